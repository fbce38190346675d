"""`single`: one backbone with a scalar head, fine-tuned end to end (the baseline)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ..backbone import Backbone
from .base import RewardModel, RewardModelConfig, RewardOutput
from .end_to_end import TrainedEndToEnd


class SingleConfig(RewardModelConfig):
    arch: Literal["single"] = "single"
    head_dropout: float = 0.1


class RewardHead(nn.Module):
    """Dropout then a linear map to one scalar."""

    def __init__(self, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden, 1)
        nn.init.normal_(self.linear.weight, std=1.0 / (hidden + 1) ** 0.5)
        nn.init.zeros_(self.linear.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(pooled)).squeeze(-1)


class SingleRewardModel(TrainedEndToEnd, RewardModel):
    arch = "single"
    config_class = SingleConfig

    def __init__(self, config: SingleConfig, backbone: Backbone):
        super().__init__(config)
        self.backbone = backbone
        self.head = RewardHead(backbone.hidden_size, config.head_dropout)

    @classmethod
    def build(cls, config: SingleConfig, *, pretrained: bool = True,
              local_dir: str | Path | None = None) -> "SingleRewardModel":
        return cls(config, Backbone.load(config.backbone, pretrained=pretrained, local_dir=local_dir))

    def reference_backbone(self):
        return self.backbone

    def forward(self, prompts: Sequence[str], responses: Sequence[str],
                domains: Sequence[str] | None = None) -> RewardOutput:
        enc = self.backbone.pairs.pad(self.backbone.pairs.encode_pairs(prompts, responses))
        device = self.head.linear.weight.device
        pooled = self.backbone(**{k: v.to(device) for k, v in enc.items()})
        return RewardOutput(rewards=self.head(pooled))
