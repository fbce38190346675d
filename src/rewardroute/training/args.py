"""Optimisation settings shared by every trainer (reward models, routers)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TrainingArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(default=2, ge=1)
    batch_size: int = Field(default=16, ge=1)
    lr: float = Field(default=5e-5, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, le=1)
    max_grad_norm: float = Field(default=1.0, gt=0)
    seed: int = 42
    eval_batch_size: int = Field(default=64, ge=1)
    # Resumable training: state is written at every epoch end, every `checkpoint_every_steps`
    # optimizer steps and every `checkpoint_every_s` seconds, whichever comes first, so a run
    # killed in its first epoch loses at most that much.
    checkpoint_every_steps: int = Field(default=50, ge=1)
    checkpoint_every_s: float = Field(default=300.0, gt=0)
    resume: bool = True
