"""zooter-ft: the encoder's top layers are fine-tuned with Zooter's loss, the epoch (or none)
is chosen on held-out training queries, and the router saves, reloads and routes like any other."""

from __future__ import annotations

import numpy as np
import torch

from rewardroute.data.schemas import RoutingRecord
from rewardroute.router.interface import load_any_router
from rewardroute.zooter.finetune import held_out
from rewardroute.zooter.labels import score_table
from rewardroute.zooter.train import train_zooter
from rewardroute.zooter.zooter_config import FineTuneConfig, ZooterConfig

QUERIES = ["What is 12 times 7?", "Solve 3x = 12.", "Write a haiku about snow.", "Draft a birthday poem.",
           "Compute 45 divided by 9.", "Compose a limerick about a cat."]


def _table():
    rows = [RoutingRecord(id=str(i), query=f"{q} ({i})", scores={"calc": 1.0 if i % 6 in (0, 1, 4) else 0.1,
                                                                   "poet": 0.6})
            for i, q in enumerate(QUERIES * 5)]
    return score_table(rows)


def _config(**ft) -> ZooterConfig:
    return ZooterConfig(method="zooter-ft", head_l2=1e-3, guard_se=None, abstain_margin=0.0, candidates=None,
                        backbone={"max_length": 32}, finetune=FineTuneConfig(epochs=2, batch_size=8, **ft))


def test_held_out_share_is_seeded_and_leaves_training_queries():
    a, b = held_out(30, 0.2, seed=0), held_out(30, 0.2, seed=0)
    assert np.array_equal(a, b) and len(a) == 6 and len(set(a)) == 6
    assert len(held_out(2, 0.9, seed=0)) == 1  # one query always stays to train on


def test_zooter_ft_trains_the_top_layers_only_and_round_trips(tmp_path):
    from rewardroute.backbone import Backbone, BackboneConfig

    shared = Backbone.load(BackboneConfig(max_length=32))
    before = {n: p.detach().clone() for n, p in shared.named_parameters()}
    # the toy's frozen fit is already near perfect: take the fine-tuned epoch anyway
    zr, report = train_zooter(_table(), _config(lr=1e-3, keep_frozen_fit=False), backbone=shared)
    assert all(torch.equal(p, before[n]) for n, p in shared.named_parameters())  # the caller's backbone is untouched
    info = report.params["fine_tuning"]
    assert report.method == "zooter-ft" and info["held_out"] == 6 and info["trained_layers_from"] == 4
    assert not info["kept_frozen_fit"] and info["best_epoch"] in (1, 2) and zr.router.config.finetune
    assert zr.knn_weight == 0.0  # no memory of frozen vectors beside a fine-tuned encoder
    moved = {n for n, p in zr.router.backbone.named_parameters() if not torch.equal(p, before[n])}
    assert moved and all(".layer.4." in n or ".layer.5." in n for n in moved), moved
    zr.save(tmp_path / "ft")
    assert (tmp_path / "ft" / "backbone").is_dir()  # the fine-tuned encoder travels with the router
    loaded = load_any_router(tmp_path / "ft")
    queries = ["What is 6 times 7?", "Write a poem about rain."]
    assert np.allclose(loaded.probs(queries), zr.probs(queries), atol=1e-5)


def test_zooter_ft_keeps_the_frozen_fit_when_no_epoch_beats_it(tmp_path):
    zr, report = train_zooter(_table(), _config(lr=1e-12, head_lr=1e-12))  # nothing can move
    info = report.params["fine_tuning"]
    assert info["kept_frozen_fit"] and info["best_epoch"] is None
    assert not zr.router.config.finetune  # saved and cached like a plain zooter router
