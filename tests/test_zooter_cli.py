"""`router train / route / eval` end to end on a small learnable routing task.

Three "LLMs": mathbot wins arithmetic, poet wins poems, generalist is middling everywhere
(and so the best single model). A router that learns anything beats best_single.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from rewardroute.cli import app
from rewardroute.io import write_jsonl_atomic
from rewardroute.zooter.route import ZooterRouter

runner = CliRunner()
COSTS = {"mathbot": 0.001, "poet": 0.002, "generalist": 0.01}
TOPICS = ["the sea", "autumn", "a cat", "the moon", "old friends", "the city", "rain", "a mountain", "winter",
          "love", "a river", "the stars", "a garden", "silence", "a train"]


def records(n: int, offset: int) -> list[dict]:
    rows = []
    for i in range(offset, offset + n):
        if i % 2:
            q, tag, s = f"What is {i} plus {3 * i + 1}? Compute the sum.", "math", {"mathbot": 1.0, "poet": 0.0}
        else:
            q, tag, s = f"Write a short poem about {TOPICS[i % len(TOPICS)]}.", "poem", {"mathbot": 0.0, "poet": 0.9}
        rows.append({"id": str(i), "query": q, "tags": [tag], "scores": {**s, "generalist": 0.55}, "costs": COSTS})
    return rows


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("zooter")
    train = records(60, 0)
    train.append({"id": "bad", "query": "no score for poet", "scores": {"mathbot": 1.0, "generalist": 0.5}})
    write_jsonl_atomic(tmp / "train.jsonl", train)
    write_jsonl_atomic(tmp / "test.jsonl", records(20, 1000))
    return {"dir": tmp, "train": tmp / "train.jsonl", "test": tmp / "test.jsonl", "cache": tmp / "cache"}


@pytest.fixture(scope="module")
def router_dir(files) -> Path:
    out = files["dir"] / "router"
    res = runner.invoke(app, ["router", "train", "--data", str(files["train"]), "--out", str(out),
                              "--cache-dir", str(files["cache"]), "--epochs", "20", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["n_train"] == 60 and report["skipped"] == 1  # the record without a poet score
    assert "skipped 1 of 61 records" in res.stderr and "train.jsonl:61" in res.stderr
    return out


def test_saved_router_keeps_models_and_label_settings(router_dir):
    zr = ZooterRouter.load(router_dir)
    assert sorted(zr.experts) == ["generalist", "mathbot", "poet"]
    assert zr.state.best_single == "generalist"
    assert zr.state.training.labels.temperature == 0.05 and zr.state.training.labels.beta == 0.3
    assert zr.state.costs["generalist"] == pytest.approx(0.01)


def test_route_prints_the_choice_and_distribution(router_dir, files):
    res = runner.invoke(app, ["router", "route", "--router", str(router_dir), "--cache-dir", str(files["cache"]),
                              "--query", "What is 12 plus 40? Compute the sum.",
                              "--query", "Write a short poem about the forest.", "--json"])
    assert res.exit_code == 0, res.output
    out = [json.loads(line) for line in res.stdout.strip().splitlines()]
    assert [o["model"] for o in out] == ["mathbot", "poet"]
    assert sum(out[0]["probs"].values()) == pytest.approx(1.0, abs=1e-4)


def test_route_restricted_and_unknown_models(router_dir, files):
    res = runner.invoke(app, ["router", "route", "--router", str(router_dir), "--cache-dir", str(files["cache"]),
                              "--query", "What is 1 plus 2?", "--only", "poet,generalist", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["model"] in ("poet", "generalist")
    res = runner.invoke(app, ["router", "route", "--router", str(router_dir), "--query", "hi", "--only", "gpt-9"])
    assert res.exit_code == 2 and "unknown model ['gpt-9']" in res.output


def test_eval_json_has_every_metric_and_beats_best_single(router_dir, files):
    png = files["dir"] / "curve.png"
    res = runner.invoke(app, ["router", "eval", "--router", str(router_dir), "--data", str(files["test"]),
                              "--cache-dir", str(files["cache"]), "--plot", str(png), "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["n"] == 20 and sorted(r["models"]) == ["generalist", "mathbot", "poet"]
    ms = r["mean_score"]
    assert set(ms) >= {"router", "best_single", "oracle", "random", "knn", "mlp", "rmr"}
    assert ms["best_single"] == pytest.approx(0.55) and ms["oracle"] == pytest.approx(0.95)
    assert ms["router"] > 0.9 and r["gap_recovered"] > 0.8
    assert ms["rmr"] is None  # no reward-model scores given
    assert r["mtr"]["router"] <= r["mtr"]["best_single"] and r["uplift"]["router"] == 1.0
    for key in ("apgr", "cpt50", "cpt80", "aiq"):
        assert r[key] is not None
    assert 0.0 <= r["cpt50"] <= 1.0
    assert sum(r["routing_share"].values()) == pytest.approx(1.0)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_rmr_with_reward_scores(router_dir, files):
    # a reward model that is right on 3 of 4 queries: rmr picks its favourite response
    rm_rows = records(20, 1000)
    for i, row in enumerate(rm_rows):
        best = "mathbot" if int(row["id"]) % 2 else "poet"
        if i % 4 == 0:
            best = "generalist"
        row["scores"] = {m: float(m == best) for m in COSTS}
    write_jsonl_atomic(files["dir"] / "rm.jsonl", rm_rows)
    res = runner.invoke(app, ["router", "eval", "--router", str(router_dir), "--data", str(files["test"]),
                              "--cache-dir", str(files["cache"]), "--rm-scores", str(files["dir"] / "rm.jsonl"),
                              "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["mean_score"]["rmr"] == pytest.approx((15 * 0.95 + 5 * 0.55) / 20, abs=0.03)
    assert r["rmr_cost_multiplier"] == 3


def test_strict_rejects_with_file_and_line(files):
    res = runner.invoke(app, ["router", "train", "--data", str(files["train"]), "--out", str(files["dir"] / "x"),
                              "--cache-dir", str(files["cache"]), "--strict"])
    assert res.exit_code == 2 and "train.jsonl:61" in res.output and "scores" in res.output


@pytest.mark.parametrize("flags", [["--hard", "--beta", "1"], ["--tags", "auto", "--auto-k", "2"]])
def test_train_variants(files, flags):
    out = files["dir"] / f"variant{len(flags)}"
    res = runner.invoke(app, ["router", "train", "--data", str(files["train"]), "--out", str(out), "--cache-dir",
                              str(files["cache"]), "--epochs", "10", "--head-l2", "0.001", "--knn-weight", "0",
                              *flags])
    assert res.exit_code == 0, res.output
    zr = ZooterRouter.load(out)
    if "--hard" in flags:
        assert zr.state.training.labels.hard is True
    else:
        assert zr.state.auto_tags_k == 2 and zr.centroids.shape[0] == 2


def test_commands_have_help_with_examples():
    for cmd in ("collect", "score", "train", "route", "eval"):
        res = runner.invoke(app, ["router", cmd, "--help"])
        assert res.exit_code == 0 and "Examples" in res.output, cmd


def test_strong_share_routing_for_two_models(files, router_dir):
    rows = [{**r, "scores": {k: v for k, v in r["scores"].items() if k != "generalist"}} for r in records(40, 0)]
    write_jsonl_atomic(files["dir"] / "two.jsonl", rows)
    out = files["dir"] / "two"
    res = runner.invoke(app, ["router", "train", "--data", str(files["dir"] / "two.jsonl"), "--out", str(out),
                              "--cache-dir", str(files["cache"]), "--epochs", "10", "--head-l2", "0.001",
                              "--knn-weight", "0"])
    assert res.exit_code == 0, res.output
    zr = ZooterRouter.load(out)
    strong = zr.state.best_single
    q = "What is 5 plus 7? Compute the sum."
    picks = {}
    for share in (0.0, 1.0):
        res = runner.invoke(app, ["router", "route", "--router", str(out), "--cache-dir", str(files["cache"]),
                                  "--query", q, "--strong-share", str(share), "--json"])
        assert res.exit_code == 0, res.output
        picks[share] = json.loads(res.stdout)["model"]
    assert picks[1.0] == strong and picks[0.0] != strong
    res = runner.invoke(app, ["router", "route", "--router", str(router_dir), "--query", q,
                              "--strong-share", "0.5"])
    assert res.exit_code == 2 and "exactly 2 models" in res.output


def test_device_and_precision_on_every_router_command(router_dir, files, tmp_path):
    """bf16 embeddings bypass the (fp32) cache both ways; an unavailable device is a user error."""
    cache = tmp_path / "cache"
    res = runner.invoke(app, ["router", "train", "--data", str(files["train"]), "--out", str(tmp_path / "r"),
                              "--cache-dir", str(cache), "--epochs", "20", "--method", "knn",
                              "--device", "cpu", "--precision", "bf16"])
    assert res.exit_code == 0, res.output
    assert not cache.exists()  # bf16 vectors are never cached (nor read from the fp32 cache)
    res = runner.invoke(app, ["router", "eval", "--router", str(router_dir), "--data", str(files["test"]),
                              "--cache-dir", str(cache), "--device", "cpu", "--precision", "bf16", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["mean_score"]["router"] > 0.9 and not cache.exists()
    for cmd in (["train", "--data", str(files["train"]), "--out", str(tmp_path / "x")],
                ["eval", "--router", str(router_dir), "--data", str(files["test"])]):
        res = runner.invoke(app, ["router", *cmd, "--device", "cuda"])
        if not torch.cuda.is_available():
            assert res.exit_code == 2 and "no CUDA GPU" in res.output, res.output
        res = runner.invoke(app, ["router", *cmd, "--device", "tpu"])
        assert res.exit_code == 2 and "unknown device 'tpu'" in res.output, res.output
    assert not (tmp_path / "x").exists()


def test_int8_routes_like_fp32_and_is_refused_where_it_does_not_apply(router_dir, files, tmp_path):
    q = ["Write a haiku about autumn", "What is 17 times 3?"]
    picks, cache = {}, tmp_path / "cache"
    for precision in ("fp32", "int8"):
        res = runner.invoke(app, ["router", "route", "--router", str(router_dir), *[a for x in q for a in ("--query", x)],
                                  "--device", "cpu", "--precision", precision, "--json", "--cache-dir", str(cache)])
        assert res.exit_code == 0, res.output
        picks[precision] = [json.loads(line) for line in res.stdout.splitlines()]
        if precision == "fp32":
            cached = {f.name: f.read_bytes() for f in cache.iterdir()}
    assert {f.name: f.read_bytes() for f in cache.iterdir()} == cached  # int8 neither wrote nor read it
    assert [r["model"] for r in picks["int8"]] == [r["model"] for r in picks["fp32"]]
    gaps = [max(abs(a["probs"][m] - b["probs"][m]) for m in a["probs"]) for a, b in zip(picks["fp32"], picks["int8"])]
    assert max(gaps) < 0.05 and max(gaps) > 0  # close, and really computed in int8
    res = runner.invoke(app, ["router", "train", "--data", str(files["train"]), "--out", str(tmp_path / "x"),
                              "--precision", "int8"])
    assert res.exit_code == 2 and "int8 is for routing only" in res.output, res.output
    assert not (tmp_path / "x").exists()
