"""The training loop resumes an interrupted run exactly where it stopped."""

import pytest
import torch
from torch import nn

from rewardroute.training import TrainingArgs, train_loop


def _job(stop_after: int | None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 1))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 4, generator=g)
    y = (x.sum(dim=1, keepdim=True) > 0).float()
    calls = {"n": 0}

    def step(batch):
        calls["n"] += 1
        if stop_after is not None and calls["n"] > stop_after:
            raise KeyboardInterrupt  # a crash in the middle of an epoch
        idx = torch.tensor(batch)
        loss = nn.functional.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
        return loss, {}

    def evaluate():
        with torch.no_grad():
            return -nn.functional.binary_cross_entropy_with_logits(model(x), y).item()

    return model, list(range(40)), step, evaluate


def test_resume_matches_an_uninterrupted_run(tmp_path):
    args = TrainingArgs(epochs=3, batch_size=8, lr=1e-2, checkpoint_every_s=1e-9, seed=5)
    model_a, items, step, ev = _job(None)
    full = train_loop(model_a, items, step, ev, args, resume_dir=tmp_path / "a")

    model_b, items, step, ev = _job(stop_after=7)  # dies in epoch 2, step 2
    with pytest.raises(KeyboardInterrupt):
        train_loop(model_b, items, step, ev, args, resume_dir=tmp_path / "b")
    assert (tmp_path / "b" / "state.pt").exists()

    model_c, items, step, ev = _job(None)
    resumed = train_loop(model_c, items, step, ev, args, resume_dir=tmp_path / "b")
    assert resumed.resumed
    assert resumed.steps == full.steps
    assert resumed.best_epoch == full.best_epoch
    for (n, p), (_, q) in zip(model_a.named_parameters(), model_c.named_parameters()):
        assert torch.allclose(p, q, atol=1e-6), n


def test_resume_state_of_another_job_is_ignored(tmp_path):
    args = TrainingArgs(epochs=1, batch_size=8, lr=1e-2, checkpoint_every_s=1e-9)
    model, items, step, ev = _job(None)
    train_loop(model, items, step, ev, args.model_copy(update={"epochs": 2}), resume_dir=tmp_path)
    model, items, step, ev = _job(None)
    other = train_loop(model, items[:32], step, ev, args, resume_dir=tmp_path)
    assert not other.resumed
    assert other.steps == 4


def test_best_epoch_weights_are_kept():
    model, items, step, _ = _job(None)
    scores = iter([0.5, 0.9, 0.1])
    snapshots = []

    def ev():
        snapshots.append({n: p.detach().clone() for n, p in model.named_parameters()})
        return next(scores)
    result = train_loop(model, items, step, ev, TrainingArgs(epochs=3, batch_size=8, lr=1e-2))
    assert result.best_epoch == 2
    for n, p in model.named_parameters():
        assert torch.equal(p, snapshots[1][n])


# -- checkpoint cadence and size (issue #10) -------------------------------------------------------

def test_a_run_killed_in_its_first_epoch_resumes_from_a_recent_step_by_default(tmp_path):
    import json

    args = TrainingArgs(epochs=1, batch_size=1, lr=1e-2, seed=5, checkpoint_every_steps=16)  # 40 steps an epoch
    model, items, step, ev = _job(stop_after=37)
    with pytest.raises(KeyboardInterrupt):
        train_loop(model, items, step, ev, args, resume_dir=tmp_path / "r")
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert (meta["epoch"], meta["step"]) == (0, 32)  # saved at steps 16 and 32, not only at the epoch end
    # the default: every 50 steps even when 300 s have not passed
    assert TrainingArgs().checkpoint_every_steps == 50


def test_the_best_weights_are_not_stored_twice_and_resume_stays_exact(tmp_path):
    args = TrainingArgs(epochs=3, batch_size=8, lr=1e-2, checkpoint_every_steps=1000, seed=5)
    model_a, items, step, ev = _job(None)
    full = train_loop(model_a, items, step, ev, args, resume_dir=tmp_path / "a")

    model_b, items, step, ev = _job(stop_after=5)  # epoch 1 is 5 steps: killed at epoch 2's first step
    with pytest.raises(KeyboardInterrupt):
        train_loop(model_b, items, step, ev, args, resume_dir=tmp_path / "b")
    state = torch.load(tmp_path / "b" / "state.pt", weights_only=False)
    assert state["best"] is None and set(state["model"]) == {n for n, _ in model_b.named_parameters()}

    model_c, items, step, ev = _job(None)
    resumed = train_loop(model_c, items, step, ev, args, resume_dir=tmp_path / "b")
    assert resumed.resumed and resumed.best_epoch == full.best_epoch
    for (n, p), (_, q) in zip(model_a.named_parameters(), model_c.named_parameters()):
        assert torch.allclose(p, q, atol=1e-6), n


def test_frozen_weights_stay_out_of_the_resume_state(tmp_path):
    model, items, step, ev = _job(stop_after=3)
    model[0].weight.requires_grad_(False)
    with pytest.raises(KeyboardInterrupt):
        train_loop(model, items, step, ev, TrainingArgs(epochs=1, batch_size=8, checkpoint_every_steps=1),
                   resume_dir=tmp_path / "r")
    state = torch.load(tmp_path / "r" / "state.pt", weights_only=False)
    assert "0.weight" not in state["model"] and "0.bias" in state["model"]


def test_checkpoint_files_follow_the_umask(tmp_path):
    import os
    import stat

    from safetensors.torch import save_file

    from rewardroute.io import atomic_dir

    old = os.umask(0o027)
    try:
        with atomic_dir(tmp_path / "ckpt") as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp / "model.safetensors"))  # safetensors writes 0600
            (tmp / "config.json").write_text("{}")
    finally:
        os.umask(old)
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in (tmp_path / "ckpt").iterdir()}
    assert modes == {"model.safetensors": 0o640, "config.json": 0o640}
