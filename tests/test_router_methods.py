"""Router methods (`router train --method`): the closed-form fits, abstention, candidate
restriction, selection by inner CV, saving/loading, the CLI flag and the benchmark's quick run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardroute.backbone import Backbone
from rewardroute.cli import app
from rewardroute.data.schemas import RoutingRecord
from rewardroute.errors import ConfigError
from rewardroute.io import write_jsonl_atomic
from rewardroute.zooter.labels import ScoreTable, soft_labels
from rewardroute.zooter.methods import abstain, decisions, param_grid, reduced_rank_map, ridge_map
from rewardroute.zooter.route import ZooterRouter
from rewardroute.zooter.train import train_zooter
from rewardroute.zooter.zooter_config import ZooterConfig

REPO = Path(__file__).resolve().parents[1]
MODELS = ["mathbot", "poet", "generalist"]


# -- closed-form fits ----------------------------------------------------------------------------

@pytest.mark.parametrize("n", [40, 400])  # fewer rows than dimensions (dual solve) and more (primal)
def test_ridge_recovers_a_linear_map(n):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 60))
    w_true = rng.normal(size=(3, 60))
    y = x @ w_true.T + np.array([1.0, -2.0, 0.5])
    w, b = ridge_map(x, y, 1e-9)
    pred = x @ w.T + b
    assert np.abs(pred - y).max() < 1e-5
    if n > 60:  # identifiable only with more rows than dimensions
        assert np.abs(w - w_true).max() < 1e-5


def test_ridge_penalty_shrinks_toward_the_mean():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 8)), rng.normal(size=(50, 2))
    w, b = ridge_map(x, y, 1e6)
    assert np.abs(w).max() < 1e-4 and np.allclose(b, y.mean(axis=0), atol=1e-3)


def test_mf_has_the_rank_asked_for_and_full_rank_is_ridge():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(200, 30)), rng.normal(size=(200, 6))
    w2, _ = reduced_rank_map(x, y, 1.0, 2)
    assert np.linalg.matrix_rank(w2, tol=1e-8) == 2
    w6, b6 = reduced_rank_map(x, y, 1.0, 6)
    w, b = ridge_map(x, y, 1.0)
    assert np.allclose(w6, w) and np.allclose(b6, b)


def test_mf_shares_strength_between_models_that_behave_alike():
    """Six models are noisy copies of one latent skill: a rank-1 fit beats per-model ridge
    on held-out queries (the point of learning model embeddings)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(260, 40))
    skill = x @ rng.normal(size=40)
    y = np.outer(skill, np.linspace(0.5, 1.5, 6)) + rng.normal(scale=4.0, size=(260, 6))
    tr, te = slice(0, 60), slice(60, None)
    truth = np.outer(skill[te], np.linspace(0.5, 1.5, 6))
    errs = {}
    for name, (w, b) in {"ridge": ridge_map(x[tr], y[tr], 0.05), "mf": reduced_rank_map(x[tr], y[tr], 0.05, 1)}.items():
        errs[name] = float(((x[te] @ w.T + b - truth) ** 2).mean())
    assert errs["mf"] < 0.8 * errs["ridge"]


# -- abstain and candidates -----------------------------------------------------------------------

def test_abstain_adds_the_margin_to_the_best_singles_score():
    t = 0.05
    scores = np.array([[0.50, 0.53, 0.1], [0.50, 0.58, 0.1]])  # column 0 is the best single model
    p = soft_labels(scores, t)
    assert list(p.argmax(axis=1)) == [1, 1]
    q = abstain(p, 0, 0.05, t)
    assert list(q.argmax(axis=1)) == [0, 1]  # a 0.03 lead is under the margin, 0.08 is not
    assert np.allclose(q.sum(axis=1), 1.0)
    assert np.allclose(abstain(p, 0, 0.0, t), p)


def test_decisions_mask_models_outside_the_candidates():
    p = np.array([[0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
    order = np.array([1, 0, 2])  # model 1 is best on training data, model 2 worst
    d = decisions(p, order, [0.0], [None, 2, 1], 0.05)
    assert list(d[(None, 0.0)]) == [2, 0]
    assert list(d[(2, 0.0)]) == [1, 0]  # model 2 is not a candidate
    assert list(d[(1, 0.0)]) == [1, 1]  # only the best single model


def test_unknown_method_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown method 'svm'"):
        param_grid("svm", ZooterConfig())
    with pytest.raises(Exception, match="method"):
        ZooterConfig(method="svm")


# -- training every method on a learnable table ---------------------------------------------------

def toy_table(n: int, seed: int) -> tuple[ScoreTable, np.ndarray]:
    """Two clusters of queries in 384-d: mathbot wins cluster 0, poet cluster 1, generalist
    (0.55 everywhere) is the best single model."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(2, 384)) * 3
    cluster = np.arange(n) % 2
    emb = centres[cluster] + rng.normal(size=(n, 384))
    scores = np.where(cluster[:, None] == 0, [1.0, 0.0, 0.55], [0.0, 0.9, 0.55])
    records = [RoutingRecord(id=str(i), query=f"q{i}", scores=dict(zip(MODELS, s))) for i, s in enumerate(scores)]
    return ScoreTable(records, MODELS, scores.astype(float)), emb.astype(np.float32)


@pytest.fixture(scope="module")
def backbone() -> Backbone:
    return Backbone.load(ZooterConfig().backbone)


@pytest.mark.parametrize("method", ["zooter", "regression", "mf", "knn", "auto"])
def test_every_method_learns_saves_and_loads(method, backbone, tmp_path):
    table, emb = toy_table(60, 0)
    test_table, test_emb = toy_table(20, 1)
    zr, report = train_zooter(table, ZooterConfig(method=method), backbone=backbone, embeddings=emb)
    assert zr.state.method == report.method and (method == "auto" or report.method == method)
    choice = np.array([MODELS.index(e) for e in zr.experts])[zr.probs_from_embeddings(test_emb).argmax(axis=1)]
    best = test_table.scores.argmax(axis=1)
    assert (choice == best).all(), (method, report.as_dict())
    zr.save(tmp_path / "r")
    again = ZooterRouter.load(tmp_path / "r", backbone)
    assert np.allclose(again.probs_from_embeddings(test_emb), zr.probs_from_embeddings(test_emb), atol=1e-6)


def test_auto_takes_the_inner_cv_winner_and_reports_every_method(backbone):
    table, emb = toy_table(60, 0)
    _, report = train_zooter(table, ZooterConfig(method="auto"), backbone=backbone, embeddings=emb)
    assert set(report.inner_cv) == {"zooter", "regression", "mf", "knn"}
    top = max(r["inner_mean_score"] for r in report.inner_cv.values())
    assert report.inner_cv[report.method]["inner_mean_score"] == top


def test_fixed_margin_and_candidates_are_applied(backbone):
    table, emb = toy_table(60, 0)
    zr, report = train_zooter(table, ZooterConfig(method="regression", abstain_margin=1.0), backbone=backbone,
                              embeddings=emb)
    assert report.abstain_margin == 1.0
    assert (zr.probs_from_embeddings(emb).argmax(axis=1) == zr.experts.index("generalist")).all()
    zr, report = train_zooter(table, ZooterConfig(method="knn", candidates=2, abstain_margin=0.0),
                              backbone=backbone, embeddings=emb)
    assert report.candidates == 2 and zr.experts == ["mathbot", "generalist"]  # the 2 best training means


def test_search_abstains_when_routing_cannot_beat_best_single(backbone):
    """Scores are noise around fixed means and the ridge is nearly unpenalised, so the fit
    chases noise: the inner CV should then pick a margin or fewer candidates, sending fresh
    queries to the best single model (mathbot) far more often than the unguarded router."""
    rng = np.random.default_rng(5)
    n = 150
    emb = rng.normal(size=(n, 384)).astype(np.float32)
    scores = np.array([0.5, 0.45, 0.4]) + rng.normal(scale=0.2, size=(n, 3))
    records = [RoutingRecord(id=str(i), query=f"q{i}", scores=dict(zip(MODELS, s))) for i, s in enumerate(scores)]
    fresh = rng.normal(size=(400, 384)).astype(np.float32)
    share = {}
    for name, fixed in (("searched", {"guard_se": None}),
                        ("unguarded", {"abstain_margin": 0.0, "candidates": 3, "guard_se": None})):
        zr, report = train_zooter(ScoreTable(records, MODELS, scores),
                                  ZooterConfig(method="regression", ridge=1e-3, **fixed), backbone=backbone,
                                  embeddings=emb)
        share[name] = (zr.probs_from_embeddings(fresh).argmax(axis=1) == zr.experts.index("mathbot")).mean()
        if name == "searched":
            assert report.abstain_margin > 0 or report.candidates is not None
    assert share["unguarded"] < 0.55 and share["searched"] > share["unguarded"] + 0.2, share


def test_guard_falls_back_to_best_single_on_noise_and_keeps_the_ranking(backbone):
    """Pure noise: the search's winner shows no reliable out-of-fold gain, so the router sends
    every query to the best single model; p(model | query) still varies (for threshold and
    cost-aware policies). On the learnable table the guard lets the router route."""
    rng = np.random.default_rng(7)
    n = 150
    emb = rng.normal(size=(n, 384)).astype(np.float32)
    scores = np.array([0.5, 0.45, 0.4]) + rng.normal(scale=0.2, size=(n, 3))
    records = [RoutingRecord(id=str(i), query=f"q{i}", scores=dict(zip(MODELS, s))) for i, s in enumerate(scores)]
    zr, report = train_zooter(ScoreTable(records, MODELS, scores), ZooterConfig(method="auto"), backbone=backbone,
                              embeddings=emb)
    assert report.guard["fell_back"] and report.guard["gain"] <= report.guard["se"]
    fresh = rng.normal(size=(300, 384)).astype(np.float32)
    p = zr.probs_from_embeddings(fresh)
    assert (p.argmax(axis=1) == zr.experts.index("mathbot")).all()
    assert np.isfinite(p).all() and np.allclose(p.sum(axis=1), 1.0)
    assert len(np.unique(p[:, zr.experts.index("mathbot")])) > 250  # still a ranking of the queries
    table, emb = toy_table(60, 0)
    _, report = train_zooter(table, ZooterConfig(method="auto"), backbone=backbone, embeddings=emb)
    assert not report.guard["fell_back"] and report.guard["gain"] > report.guard["se"] > 0


def test_abstain_is_stable_at_huge_margins():
    p = soft_labels(np.array([[0.2, 0.9, 0.1]]), 0.05)
    q = abstain(p, 0, 1.0, 1e-3)  # exp(1000) would overflow outside log space
    assert np.isfinite(q).all() and q.argmax() == 0


# -- CLI and benchmark ---------------------------------------------------------------------------

def test_cli_method_flag_and_default_auto(tmp_path):
    rows = []
    for i in range(40):
        q, s = ((f"What is {i} plus {2 * i}?", {"mathbot": 1.0, "poet": 0.0}) if i % 2 else
                (f"Write a poem about the number {i}.", {"mathbot": 0.0, "poet": 0.9}))
        rows.append({"id": str(i), "query": q, "scores": {**s, "generalist": 0.55}})
    write_jsonl_atomic(tmp_path / "train.jsonl", rows)
    runner = CliRunner()
    for flags, want in ((["--method", "mf"], "mf"), ([], None)):
        out = tmp_path / f"r{len(flags)}"
        res = runner.invoke(app, ["router", "train", "--data", str(tmp_path / "train.jsonl"), "--out", str(out),
                                  "--cache-dir", str(tmp_path / "cache"), "--json", *flags])
        assert res.exit_code == 0, res.output
        report = json.loads(res.stdout.strip().splitlines()[-1])
        assert report["method"] == (want or max(report["inner_cv"], key=lambda m: report["inner_cv"][m]["inner_mean_score"]))
        assert json.loads((out / "config.json").read_text())["config"]["meta"]["method"] == report["method"]
        if want is None:
            assert set(report["inner_cv"]) == {"zooter", "regression", "mf", "knn"}  # auto tried them all
    res = runner.invoke(app, ["router", "train", "--data", str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "x"),
                              "--method", "svm"])
    assert res.exit_code != 0 and "svm" in res.output


@pytest.mark.slow
def test_quick_benchmark_prints_one_json_object(built_data, tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "routing_methods.py"), "--quick", "--data",
                           str(built_data), "--cache", str(tmp_path / "cache"), "--limit", "60",
                           "--methods", "regression,mf,knn", "--no-mlp"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    assert set(r["tables"]) == {"alpaca_eval_57", "gsm8k_2", "humaneval", "can_ai_code"}
    a = r["tables"]["alpaca_eval_57"]["summary"]
    assert set(a) == {"router:regression", "router:mf", "router:knn", "knn", "best_single", "random", "oracle"}
    assert a["oracle"]["gap"]["mean"] == 1.0 and a["best_single"]["gap"]["mean"] == 0.0
    assert a["router:mf"]["gap"]["vs_knn"]["folds"] == 2
    g = r["tables"]["gsm8k_2"]["summary"]
    assert g["random"]["apgr"]["mean"] == 0.5 and g["router:knn"]["apgr"]["mean"] is not None
    assert r["multi"]["shared_models"] and set(r["multi"]["tables"]) == {"alpaca_eval_57", "humaneval"}
    assert Path(r["png"]).read_bytes()[:4] == b"\x89PNG"
    assert (REPO / "benchmarks" / "results" / "routing_methods_quick.png").exists()


# -- typed settings beside the weights ------------------------------------------------------------

def test_saved_settings_are_typed_and_inference_is_apart_from_labels(backbone, tmp_path):
    """The kNN temperature is an inference setting of its own: changing it changes routing, while
    the label temperature (a training record) does not touch inference."""
    from rewardroute.router.model import read_router_meta

    table, emb = toy_table(60, 0)
    zr, _ = train_zooter(table, ZooterConfig(method="knn", abstain_margin=0.0), backbone=backbone, embeddings=emb)
    zr.save(tmp_path / "r")
    meta = read_router_meta(tmp_path / "r")["config"]["meta"]
    assert set(meta["inference"]) == {"knn", "abstain", "strong_quantiles"}
    assert meta["training"]["labels"]["temperature"] == meta["inference"]["knn"]["temperature"] == 0.05
    before = zr.probs_from_embeddings(emb)
    zr.state.training.labels.temperature = 5.0
    assert np.allclose(zr.probs_from_embeddings(emb), before)
    zr.state.inference.knn.temperature = 5.0  # near-uniform softmax over [0, 1] scores
    assert zr.probs_from_embeddings(emb).max() < before.max() - 0.3


def test_routers_saved_with_the_flat_layout_still_load(backbone, tmp_path):
    table, emb = toy_table(60, 0)
    zr, _ = train_zooter(table, ZooterConfig(method="regression", abstain_margin=0.02), backbone=backbone,
                         embeddings=emb)
    flat = zr.state.model_dump(mode="json")
    inference = flat.pop("inference")
    flat.update(zooter=flat.pop("training"), knn=inference["knn"], abstain=inference["abstain"])
    zr.router.config.meta = flat
    old = ZooterRouter(zr.router)
    assert old.state == zr.state
    assert np.allclose(old.probs_from_embeddings(emb), zr.probs_from_embeddings(emb))


def test_invalid_saved_settings_name_the_field(backbone):
    from rewardroute.errors import CheckpointError

    table, emb = toy_table(60, 0)
    zr, _ = train_zooter(table, ZooterConfig(method="knn"), backbone=backbone, embeddings=emb)
    meta = zr.state.model_dump(mode="json")
    meta["inference"]["knn"]["k"] = 0
    zr.router.config.meta = meta
    with pytest.raises(CheckpointError, match=r"inference\.knn\.k"):
        ZooterRouter(zr.router)
