"""Optimisation settings shared by every trainer (reward models, routers)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..runtime import Precision, RuntimeConfig


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
    # Where and how (rewardroute.runtime): the device is not part of a run's identity (a run may
    # resume elsewhere); the precision is. `grad_accum` splits each batch into that many
    # micro-batches (same global batch, less memory); gradient checkpointing trades compute for
    # activation memory. Neither changes the recipe.
    device: str = "auto"
    precision: Precision = "fp32"
    grad_accum: int = Field(default=1, ge=1)
    gradient_checkpointing: bool = False

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        return RuntimeConfig(device=v).device

    def runtime(self) -> RuntimeConfig:
        return RuntimeConfig(device=self.device, precision=self.precision)
