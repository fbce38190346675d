"""Settings of the expert router and of its training."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..backbone import BackboneConfig
from ..training.args import TrainingArgs


class RouterConfig(BaseModel):
    """What the router is: which experts, on which backbone, with which head."""

    model_config = ConfigDict(extra="forbid")
    experts: list[str]
    backbone: BackboneConfig = Field(default_factory=lambda: BackboneConfig(max_length=128))
    # False: the backbone stays frozen and only the head learns (fast: embeddings are
    # computed once). True: the backbone is fine-tuned with the head.
    finetune: bool = False
    hidden: int | None = Field(default=None, ge=1)  # None: a linear head; else one hidden layer
    dropout: float = Field(default=0.1, ge=0, lt=1)
    meta: dict = Field(default_factory=dict)  # what the router was trained for (labels, tags...)

    @field_validator("experts")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("a router needs at least one expert")
        if len(set(v)) != len(v):
            raise ValueError(f"expert names must be unique: {v}")
        return v


class RouterTrainingConfig(TrainingArgs):
    """KL training on target distributions. `head_l2` is an explicit L2 penalty on the head
    weights (not weight decay): without it a head on few queries overfits."""

    lr: float = Field(default=1e-3, gt=0)  # the frozen-backbone default; fine-tuning wants ~5e-5
    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=32, ge=1)
    head_l2: float = Field(default=0.0, ge=0)
    head_lr: float | None = Field(default=None, gt=0)  # head lr when fine-tuning
    # Fine-tuning with frozen lower layers: compute their output once per text and replay only
    # the layers that train (rewardroute.frozen_prefix; the frozen layers then apply no dropout)
    cache_frozen_layers: bool = True
