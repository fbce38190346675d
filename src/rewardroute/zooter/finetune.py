"""`zooter-ft`: Zooter's KL loss with the router's encoder fine-tuned.

The frozen-embedding fit (`train.train_zooter`, method zooter without kNN) starts the head; then
the encoder's top layers (`FineTuneConfig.freeze_layers` keep the lowest frozen) and the head
train on with the same targets. The epoch is chosen on a held-out share of the training queries
by the mean score of the routed model, and the frozen fit is kept when no epoch beats it, so
fine-tuning can only be chosen for doing better on queries it did not train on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..backbone import freeze_lower_layers
from ..router import ExpertRouter, RouterTrainingConfig, fit_router
from ..training.loop import load_trainable, trainable_state
from .zooter_config import ZooterConfig


def held_out(n: int, share: float, seed: int) -> np.ndarray:
    """A seeded share of `n` query indices (at least one, and at least one left to train on)."""
    k = min(max(1, round(n * share)), n - 1)
    return np.sort(np.random.default_rng(seed + 7).permutation(n)[:k])


def routed_score(scores: np.ndarray):
    """Metric for `fit_router`: the mean score of the argmax model, on `scores`' queries."""
    rows = np.arange(len(scores))
    return lambda probs: float(scores[rows, np.asarray(probs).argmax(axis=1)].mean())


def finetune_encoder(router: ExpertRouter, queries: list[str], targets: np.ndarray, scores: np.ndarray,
                     head_l2: float, config: ZooterConfig) -> dict[str, Any]:
    """Fine-tune `router` in place (its backbone must be its own: the weights change). `targets`
    [N, K] are the training distributions, `scores` [N, K] the raw scores over the experts.
    Returns what was done, for the training report."""
    ft = config.finetune
    n = len(queries)
    valid = held_out(n, ft.valid_share, config.seed)
    train = np.setdiff1d(np.arange(n), valid)
    metric = routed_score(scores[valid])
    valid_texts = [queries[i] for i in valid]
    frozen_fit = metric(router.probs(valid_texts).numpy())

    router.config = router.config.model_copy(update={
        "finetune": True, "backbone": router.config.backbone.model_copy(update={"freeze_layers": ft.freeze_layers})})
    router.backbone.requires_grad_(True)
    freeze_lower_layers(router.backbone.model, ft.freeze_layers)
    start = trainable_state(router)
    args = RouterTrainingConfig(epochs=ft.epochs, lr=ft.lr, head_lr=ft.head_lr, batch_size=ft.batch_size,
                                head_l2=head_l2, weight_decay=0.0, seed=config.seed, resume=False)
    result = fit_router(router, [queries[i] for i in train], torch.from_numpy(targets[train]).float(), args,
                        valid_texts=valid_texts, valid_targets=torch.from_numpy(targets[valid]).float(),
                        metric=metric, desc="zooter-ft")
    kept_frozen = ft.keep_frozen_fit and (result.best_metric is None or result.best_metric <= frozen_fit)
    if kept_frozen:  # back to the frozen fit, saved and cached like any zooter router
        load_trainable(router, start)
        router.config = router.config.model_copy(update={"finetune": False})
        router.backbone.requires_grad_(False)
    router.eval()
    return {"held_out": len(valid), "frozen_fit_valid_score": frozen_fit, "best_valid_score": result.best_metric,
            "best_epoch": None if kept_frozen else result.best_epoch, "kept_frozen_fit": kept_frozen,
            "trained_layers_from": ft.freeze_layers}
