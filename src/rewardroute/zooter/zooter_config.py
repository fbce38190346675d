"""Everything a user picks when training a Zooter router (TRL-style: one config object,
saved beside the weights in the router's `meta`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..backbone import BackboneConfig
from ..router import RouterTrainingConfig


def _head_training() -> RouterTrainingConfig:
    # A linear head on frozen embeddings: the explicit L2 penalty (head_l2) regularises it,
    # so AdamW's own decay is off. 40 epochs of batches of 64 converge on ~1k queries.
    return RouterTrainingConfig(epochs=40, batch_size=64, lr=3e-3, weight_decay=0.0, warmup_ratio=0.05)


class LabelConfig(BaseModel):
    """How scores become target distributions (see `zooter.labels`)."""

    model_config = ConfigDict(extra="forbid")
    # [0, 1]-scaled scores (judge win-probabilities, correctness, min-max-scaled rewards) want a
    # low temperature: at T=1 softmax over [0, 1] is almost uniform and teaches nothing.
    temperature: float = Field(default=0.05, gt=0)
    beta: float = Field(default=0.3, ge=0, le=1)  # Zooter's tag-enhancement weight
    hard: bool = False  # the paper's hard-label ablation: one-hot on the best model
    normalize: Literal["none", "minmax", "zscore"] = "minmax"
    tags: Literal["field", "auto", "none"] = "field"
    auto_k: int | None = Field(default=None, ge=2)  # k-means k for tags=auto (None: labels.default_k)


class FineTuneConfig(BaseModel):
    """`zooter-ft`: after the frozen-embedding fit, the encoder's top layers and the head train on
    with the same KL loss; the epoch is chosen on a held-out share of the training queries by the
    routed mean score, and the frozen fit is kept when no epoch beats it."""

    model_config = ConfigDict(extra="forbid")
    freeze_layers: int = Field(default=4, ge=0)  # MiniLM has 6: its top 2 train
    epochs: int = Field(default=6, ge=1)
    lr: float = Field(default=3e-5, gt=0)  # the encoder's layers
    head_lr: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=32, ge=1)
    valid_share: float = Field(default=0.2, gt=0, lt=1)
    # False: keep the best fine-tuned epoch even when the frozen fit did as well on held-out queries
    keep_frozen_fit: bool = True


class ZooterConfig(BaseModel):
    """Training settings of `rewardroute router train`."""

    model_config = ConfigDict(extra="forbid")
    labels: LabelConfig = Field(default_factory=LabelConfig)
    models: list[str] | None = None  # route among these (default: every model scored in the data)
    # Keep only the `candidates` best models by mean training score as routing targets: with
    # dozens of models most never win often enough to be learnable.
    candidates: int | None = Field(default=None, ge=1)
    strict: bool = False  # a record missing a score fails with file:line instead of being skipped
    backbone: BackboneConfig = Field(default_factory=lambda: BackboneConfig(max_length=128))
    hidden: int | None = Field(default=None, ge=1)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    training: RouterTrainingConfig = Field(default_factory=_head_training)
    # Explicit L2 on the head. None: picked by inner cross-validation from `l2_grid`, on the
    # mean score of the routed model (without it a head on few queries overfits).
    head_l2: float | None = Field(default=None, ge=0)
    l2_grid: list[float] = Field(default_factory=lambda: [3e-4, 1e-3, 3e-3, 1e-2])
    inner_folds: int = Field(default=3, ge=2)
    # Mix the head with a k-nearest-neighbour estimate over the training queries:
    # p = (1 - w) * p_head + w * softmax(mean neighbour scores / T). None: w picked by the
    # same inner cross-validation from `knn_weights`.
    knn_k: int = Field(default=25, ge=1)
    knn_weight: float | None = Field(default=None, ge=0, le=1)
    knn_weights: list[float] = Field(default_factory=lambda: [0.0, 0.5])
    # Which router (zooter.methods): zooter (the paper's KL head + kNN), regression, mf, knn,
    # or auto: the one with the best inner-CV mean routed score on the training data; zooter-ft
    # (never picked by auto: its inner CV would fine-tune an encoder per fold) fine-tunes the
    # encoder's top layers after the zooter fit, see `finetune`.
    method: Literal["zooter", "regression", "mf", "knn", "auto", "zooter-ft"] = "zooter"
    finetune: FineTuneConfig = Field(default_factory=FineTuneConfig)
    # regression and mf: ridge penalty (relative to the embeddings' scale) and mf's rank;
    # None: picked by inner CV from the grids.
    ridge: float | None = Field(default=None, gt=0)
    ridge_grid: list[float] = Field(default_factory=lambda: [1.0, 3.0, 10.0, 30.0, 100.0])
    rank: int | None = Field(default=None, ge=1)
    rank_grid: list[int] = Field(default_factory=lambda: [2, 4, 8])
    knn_ks: list[int] = Field(default_factory=lambda: [10, 25, 50, 100])  # the knn method's k grid
    # Against the routing plateau, searched for every method by the same inner CV unless fixed:
    # route among the best `candidates` models only (`candidates_grid` plus all of them), and
    # abstain to the best single model unless another is predicted better by more than
    # `abstain_margin` (in min-max-normalised score units; 0 and `margin_grid` are tried).
    candidates_grid: list[int] = Field(default_factory=lambda: [2, 5, 10, 20])
    abstain_margin: float | None = Field(default=None, ge=0)
    margin_grid: list[float] = Field(default_factory=lambda: [0.01, 0.02, 0.05, 0.1])
    # After the search: unless the winner's out-of-fold gain over the best single model exceeds
    # guard_se standard errors (over the training queries), route everything to the best single
    # model. None: no guard.
    guard_se: float | None = Field(default=1.0, ge=0)
    seed: int = 0
