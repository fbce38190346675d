"""Training on several processes (torchrun, gloo on CPU) gives what one process gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    return env


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]


def test_two_processes_and_gradient_accumulation_end_on_the_same_weights(tmp_path) -> None:
    script = str(HERE / "support" / "dist_loop.py")
    runs = {"one": [sys.executable, script, str(tmp_path / "one.pt")],
            "accum": [sys.executable, script, str(tmp_path / "accum.pt"), "2"],
            "two": _torchrun(script, str(tmp_path / "two.pt"))}
    for name, cmd in runs.items():
        proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{name}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    one = torch.load(tmp_path / "one.pt")
    for name in ("accum", "two"):
        other = torch.load(tmp_path / f"{name}.pt")
        for k in one:
            assert torch.allclose(one[k], other[k], atol=1e-5), (name, k, one[k], other[k])
    assert not torch.allclose(one["weight"], torch.zeros_like(one["weight"]))


@pytest.mark.slow
def test_rm_train_under_torchrun_matches_one_process(tmp_path, toy_pairs) -> None:
    from rewardroute.io import write_jsonl_atomic
    from rewardroute.reward import load_model

    train, valid = tmp_path / "train.jsonl", tmp_path / "valid.jsonl"
    write_jsonl_atomic(train, toy_pairs[:32])
    write_jsonl_atomic(valid, toy_pairs[32:])
    flags = ["rm", "train", "--train", str(train), "--valid", str(valid), "--epochs", "2", "--max-length", "32",
             "--seed", "3", "--set", "training.batch_size=8", "--set", "training.device=cpu",
             "--set", "model.head_dropout=0.0"]
    for name, cmd in (("one", [sys.executable, "-m", "rewardroute"]), ("two", _torchrun("-m", "rewardroute"))):
        proc = subprocess.run([*cmd, *flags, "--out", str(tmp_path / name)], env=_env(), capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode == 0, f"{name}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    hist = {n: json.loads((tmp_path / n / "config.json").read_text())["extra"]["training"]["history"]
            for n in ("one", "two")}
    # Same global batches and averaged gradients; only the backbone's dropout masks differ, so
    # the runs agree within a tolerance, not bit for bit.
    for a, b in zip(hist["one"], hist["two"]):
        assert abs(a["valid"] - b["valid"]) <= 0.15
    pairs = toy_pairs[32:]
    r1 = load_model(tmp_path / "one").score([p.prompt for p in pairs], [p.chosen for p in pairs])
    r2 = load_model(tmp_path / "two").score([p.prompt for p in pairs], [p.chosen for p in pairs])
    # stated tolerance: rewards within 5% of their scale, and the same preferred answer on nearly every pair
    assert (r1 - r2).abs().mean() < 0.05 * r1.abs().mean(), (r1 - r2).abs().mean()
    rej1 = load_model(tmp_path / "one").score([p.prompt for p in pairs], [p.rejected for p in pairs])
    rej2 = load_model(tmp_path / "two").score([p.prompt for p in pairs], [p.rejected for p in pairs])
    assert ((r1 > rej1) == (r2 > rej2)).float().mean() >= 0.9
    assert not (tmp_path / "two.resume").exists()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_rm_and_router_score_under_torchrun_shard_and_join_in_input_order(tmp_path, toy_pairs) -> None:
    from rewardroute.backbone import BackboneConfig
    from rewardroute.io import write_jsonl_atomic
    from rewardroute.reward.checkpoint import save_model
    from rewardroute.reward.reward_trainer import build_for_training
    from rewardroute.reward.single import SingleConfig, SingleRewardModel

    model = build_for_training(SingleRewardModel, SingleConfig(backbone=BackboneConfig(max_length=32)), seed=0)
    save_model(model, tmp_path / "rm")
    rows = [p.model_dump() for p in toy_pairs[:9]] + [{"prompt": p.prompt, "response": p.chosen} for p in toy_pairs[9:14]]
    write_jsonl_atomic(tmp_path / "in.jsonl", rows)
    flags = ["rm", "score", "--model", str(tmp_path / "rm"), "--input", str(tmp_path / "in.jsonl"), "--batch-size", "4"]
    for name, cmd in (("one", [sys.executable, "-m", "rewardroute"]), ("two", _torchrun("-m", "rewardroute"))):
        proc = subprocess.run([*cmd, *flags, "--out", str(tmp_path / f"{name}.jsonl")], env=_env(),
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{name}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        assert ("shard 2/2" in proc.stdout + proc.stderr) == (name == "two")  # two processes, one shard each
    one, two = read_jsonl(tmp_path / "one.jsonl"), read_jsonl(tmp_path / "two.jsonl")
    assert [r["id"] if "id" in r else r["response"] for r in two] == [r["id"] if "id" in r else r["response"] for r in one]
    for a, b in zip(one, two):
        for key in ("reward", "chosen_reward", "rejected_reward"):
            if key in a:
                assert abs(a[key] - b[key]) < 1e-4, (key, a[key], b[key])
    assert not list(tmp_path.glob("two.jsonl.shard*"))  # the shards were joined and removed
    # a rerun finds the finished output; a rerun with another model is refused, not mixed
    proc = subprocess.run([*_torchrun("-m", "rewardroute"), *flags, "--out", str(tmp_path / "two.jsonl")], env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and read_jsonl(tmp_path / "two.jsonl") == two
    (tmp_path / "rm" / "note.txt").write_text("another model identity")
    proc = subprocess.run([*_torchrun("-m", "rewardroute"), *flags, "--out", str(tmp_path / "two.jsonl")], env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "other inputs or settings" in proc.stdout + proc.stderr
    assert read_jsonl(tmp_path / "two.jsonl") == two  # nothing lost

    # router score shards the same way (its records stream through the same join)
    records = [{"id": str(i), "query": p.prompt, "responses": {"a": p.chosen, "b": p.rejected}}
               for i, p in enumerate(toy_pairs[:7])]
    write_jsonl_atomic(tmp_path / "records.jsonl", records)
    rflags = ["router", "score", "--rm", str(tmp_path / "rm"), "--input", str(tmp_path / "records.jsonl")]
    for name, cmd in (("r1", [sys.executable, "-m", "rewardroute"]), ("r2", _torchrun("-m", "rewardroute"))):
        proc = subprocess.run([*cmd, *rflags, "--out", str(tmp_path / f"{name}.jsonl")], env=_env(),
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{name}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    r1, r2 = read_jsonl(tmp_path / "r1.jsonl"), read_jsonl(tmp_path / "r2.jsonl")
    assert [r["id"] for r in r2] == [str(i) for i in range(7)]
    for a, b in zip(r1, r2):
        assert set(a["scores"]) == {"a", "b"} and all(abs(a["scores"][m] - b["scores"][m]) < 1e-4 for m in "ab")


@pytest.mark.slow
def test_router_train_under_torchrun_embeds_in_shards_and_fits_the_same_router(tmp_path) -> None:
    import numpy as np

    from rewardroute.io import write_jsonl_atomic
    from rewardroute.zooter.route import ZooterRouter

    topics = ["the sea", "autumn", "a cat", "the moon", "rain", "winter", "a river", "silence"]
    rows = []
    for i in range(40):
        math = i % 2 == 1
        q = f"What is {i} plus {3 * i + 1}?" if math else f"Write a short poem about {topics[i % len(topics)]}."
        rows.append({"id": str(i), "query": q,
                     "scores": {"mathbot": 1.0 if math else 0.0, "poet": 0.0 if math else 0.9, "generalist": 0.55}})
    write_jsonl_atomic(tmp_path / "train.jsonl", rows)
    flags = ["router", "train", "--data", str(tmp_path / "train.jsonl"), "--method", "regression", "--device", "cpu"]
    for name, cmd in (("one", [sys.executable, "-m", "rewardroute"]), ("two", _torchrun("-m", "rewardroute"))):
        proc = subprocess.run([*cmd, *flags, "--out", str(tmp_path / name), "--cache-dir", str(tmp_path / f"c-{name}")],
                              env=_env(), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{name}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    assert list((tmp_path / "c-one").glob("*.npz")) and not (tmp_path / "c-two").exists()  # shards never write the cache
    one, two = ZooterRouter.load(tmp_path / "one"), ZooterRouter.load(tmp_path / "two")
    assert one.experts == two.experts and one.state.method == two.state.method == "regression"
    queries = ["What is 7 plus 22?", "Write a short poem about the city."]
    p1, p2 = one.probs(queries), two.probs(queries)
    # the same embeddings up to float summation order (other batch mates, other padding)
    assert np.allclose(p1, p2, atol=1e-3), (p1, p2)
    assert [one.experts[i] for i in p2.argmax(axis=1)] == ["mathbot", "poet"]
