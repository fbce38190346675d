"""No stale reuse: every resumable output carries a fingerprint (input hash, model identity,
settings); a re-run with a different one stops with an error naming what differs, or starts
afresh with --overwrite; a re-run with the same one (after a kill) still resumes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import torch
from typer.testing import CliRunner

from rewardroute.backbone import BackboneConfig
from rewardroute.backends.client import RetryPolicy
from rewardroute.backends.config import BackendConfig
from rewardroute.cli import app
from rewardroute.data.readers import read_routing
from rewardroute.data.schemas import RoutingRecord
from rewardroute.fingerprint import (StaleOutputError, checkpoint_identity, file_sha256, guard_output,
                                     sidecar_for)
from rewardroute.io import write_jsonl_atomic
from rewardroute.reward.checkpoint import save_model
from rewardroute.reward.reward_config import RewardTrainingConfig
from rewardroute.reward.rodos import RodosConfig, RodosRewardModel
from rewardroute.reward.routed import DomainRouterSettings
from rewardroute.reward.single import SingleConfig, SingleRewardModel
from rewardroute.zooter.collect import CollectConfig, collect_async
from rewardroute.zooter.score import load_scorer, score_records

from support.toy_data import toy_pairs

runner = CliRunner()


# -- the module -----------------------------------------------------------------------------------

def test_file_hash_is_streamed_sha256(tmp_path):
    import hashlib
    p = tmp_path / "big.bin"
    data = bytes(range(256)) * 10_000  # > one 1 MiB chunk
    p.write_bytes(data)
    assert file_sha256(p) == hashlib.sha256(data).hexdigest()


def test_checkpoint_identity_changes_with_any_weight_byte(tmp_path):
    d = tmp_path / "ck"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"\x00" * 64)
    (d / ".model.safetensors.tmp").write_bytes(b"ignored")  # temporary copies are not the model
    a = checkpoint_identity(d)
    (d / ".model.safetensors.tmp").write_bytes(b"still ignored")
    assert checkpoint_identity(d) == a
    (d / "model.safetensors").write_bytes(b"\x00" * 63 + b"\x01")
    assert checkpoint_identity(d) != a


def test_code_and_cache_keys(tmp_path):
    from rewardroute.fingerprint import code_identity, short_key, tree_sha256

    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    before = tree_sha256(tmp_path / "pkg", "*.py")
    (tmp_path / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"compiled")
    assert tree_sha256(tmp_path / "pkg", "*.py") == before  # only the sources count
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert tree_sha256(tmp_path / "pkg", "*.py") != before
    assert short_key({"a": 1, "b": [2]}) == short_key({"b": [2], "a": 1}) != short_key({"a": 1, "b": [3]})
    assert len(code_identity("reward", "backbone.py")) == 64 and code_identity("reward") != code_identity("training")


def test_guard_output_cases(tmp_path):
    out = tmp_path / "o.jsonl"
    assert guard_output(out, {"a": 1}) is False  # nothing there: a fresh start, fingerprint written
    assert json.loads(sidecar_for(out).read_text())["fields"] == {"a": 1}
    out.write_text("x\n")
    assert guard_output(out, {"a": 1}) is True  # the same job: resume
    with pytest.raises(StaleOutputError, match=r"a: was 1, now 2"):
        guard_output(out, {"a": 2})
    assert out.read_text() == "x\n"  # an error never touches the output
    assert guard_output(out, {"a": 2}, overwrite=True) is False and not out.exists()
    out.write_text("y\n")
    sidecar_for(out).unlink()
    with pytest.raises(StaleOutputError, match="has no fingerprint"):
        guard_output(out, {"a": 2})  # results of unknown origin are not trusted


# -- rm score ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_rms(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("rms")
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = SingleRewardModel.build(SingleConfig(backbone=BackboneConfig(max_length=32)))
        paths.append(save_model(model, root / f"rm{seed}"))
    return paths[0], paths[1]


def _pairs_file(path: Path, prefix: str, n: int = 6) -> Path:
    rows = [{"id": f"{prefix}{i}", "prompt": f"What is {i} plus {i}?", "chosen": f"{2 * i}.",
             "rejected": f"{prefix} no idea", "domain": "math"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rm_score(model: Path, inp: Path, out: Path, *extra: str):
    return runner.invoke(app, ["rm", "score", "--model", str(model), "--input", str(inp), "--output", str(out),
                               "--batch-size", "4", *extra])


def test_rm_score_into_an_output_of_another_input_stops(two_rms, tmp_path):
    rm0, _ = two_rms
    a, b = _pairs_file(tmp_path / "a.jsonl", "a"), _pairs_file(tmp_path / "b.jsonl", "b")
    out = tmp_path / "scored.jsonl"
    assert _rm_score(rm0, a, out).exit_code == 0
    before = out.read_text()
    res = _rm_score(rm0, b, out)  # yesterday: "scored 6 rows", every id from a.jsonl
    assert res.exit_code == 2 and "input_sha256" in res.output and "--overwrite" in res.output
    assert out.read_text() == before
    res = _rm_score(rm0, b, out, "--overwrite")
    assert res.exit_code == 0, res.output
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [f"b{i}" for i in range(6)]


def test_rm_score_with_another_model_stops(two_rms, tmp_path):
    rm0, rm1 = two_rms
    a = _pairs_file(tmp_path / "a.jsonl", "a")
    out = tmp_path / "scored.jsonl"
    assert _rm_score(rm0, a, out).exit_code == 0
    res = _rm_score(rm1, a, out)
    assert res.exit_code == 2 and "model: was sha256:" in res.output


def test_rm_score_resumes_after_a_kill_with_the_same_inputs(two_rms, tmp_path):
    rm0, _ = two_rms
    a = _pairs_file(tmp_path / "a.jsonl", "a")
    out = tmp_path / "scored.jsonl"
    assert _rm_score(rm0, a, out).exit_code == 0
    rows = out.read_text().splitlines()
    # killed after two rows: the partial file, no finished output, the fingerprint beside it
    marked = [json.dumps(dict(json.loads(r), chosen_reward=999.0)) for r in rows[:2]]
    out.with_name(out.name + ".partial").write_text("\n".join(marked) + "\n{\"torn", encoding="utf-8")
    out.unlink()
    res = _rm_score(rm0, a, out)
    assert res.exit_code == 0, res.output
    again = out.read_text().splitlines()
    assert [json.loads(r)["chosen_reward"] for r in again[:2]] == [999.0, 999.0]  # kept, not recomputed
    for new, old in zip(again[2:], rows[2:]):  # the rest scored again (batching moves the last digits)
        new, old = json.loads(new), json.loads(old)
        assert new["id"] == old["id"] and new["chosen_reward"] == pytest.approx(old["chosen_reward"], abs=1e-4)
    assert len(again) == len(rows)


# -- router score ---------------------------------------------------------------------------------

def _collected(path: Path) -> Path:
    rows = [{"id": str(i), "query": f"Name a colour number {i}.",
             "responses": {"a": "Blue.", "b": f"I think {i} is a nice number."}} for i in range(4)]
    write_jsonl_atomic(path, rows)
    return path


def test_router_score_rerun_with_another_reward_model_stops(two_rms, tmp_path):
    rm0, rm1 = two_rms
    inp, out = _collected(tmp_path / "c.jsonl"), tmp_path / "s.jsonl"
    first = score_records(load_scorer(rm0), inp, out)
    assert first["responses_scored"] == 8
    old = {r.id: r.scores for r in read_routing(out)}
    # yesterday: "resumed: 4, responses_scored: 0" and every score of rm0 kept
    res = runner.invoke(app, ["router", "score", "--rm", str(rm1), "--input", str(inp), "--out", str(out)])
    assert res.exit_code == 2 and "reward_model" in res.output, res.output
    assert {r.id: r.scores for r in read_routing(out)} == old
    again = score_records(load_scorer(rm1), inp, out, overwrite=True)
    assert again["resumed"] == 0 and again["responses_scored"] == 8
    assert {r.id: r.scores for r in read_routing(out)} != old


def test_router_score_after_a_kill_resumes_only_with_the_same_model(two_rms, tmp_path):
    rm0, rm1 = two_rms
    inp, out = _collected(tmp_path / "c.jsonl"), tmp_path / "s.jsonl"
    score_records(load_scorer(rm0), inp, out)
    rows = out.read_text().splitlines()
    partial = out.with_name(out.name + ".partial")
    partial.write_text(rows[0] + "\n", encoding="utf-8")
    out.unlink()
    with pytest.raises(StaleOutputError, match="reward_model"):  # yesterday: two models' scores in one file
        score_records(load_scorer(rm1), inp, out)
    assert partial.read_text() == rows[0] + "\n"
    res = score_records(load_scorer(rm0), inp, out)
    assert res["resumed"] == 1 and res["responses_scored"] == 6


def test_router_score_interrupted_mid_run_resumes_under_the_same_fingerprint(two_rms, tmp_path):
    rm0, _ = two_rms
    inp, out = _collected(tmp_path / "c.jsonl"), tmp_path / "s.jsonl"
    scorer = load_scorer(rm0)
    real, calls = scorer.score, []

    def dies_on_third_chunk(p, r, **kw):
        calls.append(len(p))
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C (or a kill) in the middle of the run
        return real(p, r, **kw)

    scorer.score = dies_on_third_chunk
    with pytest.raises(KeyboardInterrupt):
        score_records(scorer, inp, out, chunk=1)
    assert not out.exists() and len(out.with_name(out.name + ".partial").read_text().splitlines()) == 2
    scorer.score = real
    res = score_records(scorer, inp, out, chunk=1)
    assert res["resumed"] == 2 and res["responses_scored"] == 4
    assert [r.id for r in read_routing(out)] == ["0", "1", "2", "3"]


# -- router collect -------------------------------------------------------------------------------

def _backends(model_b: str = "f") -> list[BackendConfig]:
    return [BackendConfig(name="good", base_url="http://good.test/v1", model="g"),
            BackendConfig(name="other", base_url="http://other.test/v1", model=model_b)]


def _answer(req: httpx.Request) -> httpx.Response:
    body = json.loads(req.content)
    return httpx.Response(200, json={"choices": [{"message": {"content": f"{body['model']}: hi"}}]})


def _collect(out: Path, backends, cfg=None, overwrite=False):
    recs = [RoutingRecord(id=str(i), query=f"Say {i}.") for i in range(3)]
    return asyncio.run(collect_async(backends, recs, out, cfg or CollectConfig(max_tokens=8),
                                     transport=httpx.MockTransport(_answer),
                                     retry=RetryPolicy(base_s=0.0, cap_s=0.0), overwrite=overwrite))


def test_collect_with_another_backend_set_or_settings_stops(tmp_path):
    out = tmp_path / "c.jsonl"
    assert _collect(out, _backends())["requested"] == 6
    with pytest.raises(StaleOutputError, match="backends"):
        _collect(out, _backends(model_b="f2"))  # same name, another model behind it
    with pytest.raises(StaleOutputError, match="generation"):
        _collect(out, _backends(), CollectConfig(max_tokens=8, temperature=0.7))
    again = _collect(out, _backends(model_b="f2"), overwrite=True)
    assert again["requested"] == 6 and again["already_done"] == 0
    assert {r.responses["other"] for r in read_routing(out)} == {"f2: hi"}
    assert _collect(out, _backends(model_b="f2"))["requested"] == 0  # the same job: nothing to ask


# -- rodos part reuse ---------------------------------------------------------------------------

def test_rodos_parts_of_another_job_are_never_reused(tmp_path):
    pairs = toy_pairs(4)
    cfg = RodosConfig(backbone=BackboneConfig(max_length=32), domains=["chat", "math"],
                      router=DomainRouterSettings(max_length=32, adapter_epochs=0))
    args = RewardTrainingConfig(epochs=1, batch_size=8, lr=1e-4)
    resume = tmp_path / "rm.resume"
    torch.manual_seed(0)
    RodosRewardModel.build(cfg).fit(pairs, pairs[:4], args, resume_dir=resume)
    assert (resume / "parts" / "router").is_dir() and (resume / "fingerprint.json").exists()

    # the same job (an interrupted run started again): every finished part is reused
    res = RodosRewardModel.build(cfg).fit(pairs, pairs[:4], args, resume_dir=resume)
    assert all(h.get("resumed") for h in res.history)

    # other data: the finished parts must not be reused
    changed = [p.model_copy(update={"chosen": p.chosen + "!"}) if i == 0 else p for i, p in enumerate(pairs)]
    with pytest.raises(StaleOutputError, match="train_pairs"):
        RodosRewardModel.build(cfg).fit(changed, pairs[:4], args, resume_dir=resume)
    with pytest.raises(StaleOutputError, match="training"):
        RodosRewardModel.build(cfg).fit(pairs, pairs[:4], args.model_copy(update={"lr": 5e-5}), resume_dir=resume)
