"""The RewardModel interface, shared by every architecture.

An architecture implements one method, `forward(prompts, responses)`, returning a
`RewardOutput`. Everything else (batched no-grad scoring, the Bradley-Terry loss, saving,
loading, parameter reports) lives here once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from ..backbone import BackboneConfig, count_parameters
from ..data.schemas import Prompt, render_prompt


class RewardModelConfig(BaseModel):
    """Settings common to every architecture; each architecture subclasses it."""

    model_config = ConfigDict(extra="forbid")
    arch: str
    backbone: BackboneConfig = Field(default_factory=BackboneConfig)
    domains: list[str] = Field(default_factory=list)  # the domains seen in training


@dataclass
class RewardOutput:
    rewards: torch.Tensor  # [B]
    aux_loss: torch.Tensor | None = None  # added to the training loss (e.g. MoE load balancing)
    domain_probs: torch.Tensor | None = None  # [B, K] over config.domains, for routed models


class RewardModel(nn.Module, ABC):
    """Scores (prompt, response) pairs: higher is better."""

    arch: ClassVar[str]
    config_class: ClassVar[type[RewardModelConfig]] = RewardModelConfig
    # Persistence, declared per architecture (reward/checkpoint.py reads only these):
    # True: the checkpoint carries a copy of the backbone's transformers config and tokenizer,
    # and its weights are among `persisted_keys`; False: the backbone is the pretrained one,
    # re-loaded from `config.backbone` (adapters, heads and experts are saved as parts).
    backbone_in_checkpoint: ClassVar[bool] = True

    def __init__(self, config: RewardModelConfig):
        super().__init__()
        self.config = config

    @abstractmethod
    def forward(self, prompts: Sequence[str], responses: Sequence[str],
                domains: Sequence[str] | None = None) -> RewardOutput:
        """Rewards for one batch. `domains`, when given, are the true domains (oracle routing)."""

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def build(cls, config: RewardModelConfig, *, pretrained: bool = True,
              local_dir: str | Path | None = None) -> "RewardModel":
        """A fresh model. `local_dir` points at a checkpoint's backbone copy (used by load)."""
        return cls(config)

    # -- scoring -----------------------------------------------------------------------------
    @torch.no_grad()
    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], *, batch_size: int = 32,
              domains: Sequence[str] | None = None, return_output: bool = False):
        """Rewards for any number of pairs, in input order. Batches are formed from pairs of
        similar length, so little compute goes to padding."""
        texts = [render_prompt(p) for p in prompts]
        if len(texts) != len(responses):
            raise ValueError(f"{len(texts)} prompts but {len(responses)} responses")
        was_training = self.training
        self.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]) + len(responses[i]))
        rewards = torch.empty(len(texts))
        probs: torch.Tensor | None = None
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            out = self(
                [texts[i] for i in idx], [responses[i] for i in idx],
                [domains[i] for i in idx] if domains is not None else None,
            )
            rewards[idx] = out.rewards.float().cpu()
            if out.domain_probs is not None:
                if probs is None:
                    probs = torch.empty(len(texts), out.domain_probs.size(-1))
                probs[idx] = out.domain_probs.float().cpu()
        self.train(was_training)
        if return_output:
            return RewardOutput(rewards=rewards, domain_probs=probs)
        return rewards

    # -- training ----------------------------------------------------------------------------
    def pair_loss(self, prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str],
                  domains: Sequence[str] | None = None,
                  offset: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Bradley-Terry loss: -log sigmoid(r_chosen - r_rejected + offset), plus any auxiliary loss.

        Chosen and rejected go through the model as one batch. `offset` is a fixed log-odds per
        pair from another model (the surface prior): the model then learns what it misses.
        """
        n = len(prompts)
        doms = list(domains) * 2 if domains is not None else None
        out = self(list(prompts) * 2, list(chosen) + list(rejected), doms)
        margin = out.rewards[:n] - out.rewards[n:]
        if offset is not None:
            margin = margin + offset.to(margin.device, margin.dtype)
        bt = -F.logsigmoid(margin).mean()
        loss = bt if out.aux_loss is None else bt + out.aux_loss
        stats = {"bt_loss": bt.item(), "acc": (margin > 0).float().mean().item()}
        if out.aux_loss is not None:
            stats["aux_loss"] = out.aux_loss.item()
        return loss, stats

    @abstractmethod
    def fit(self, train, valid, args, *, resume_dir: Path | None = None):
        """Train on preference pairs: end to end (`end_to_end.TrainedEndToEnd`) or part by part
        (`routing.RoutedRewardModel`)."""

    # -- persistence -------------------------------------------------------------------------
    def persisted_keys(self) -> list[str]:
        """The state keys written to `model.safetensors` (default: all of them)."""
        return list(self.state_dict().keys())

    def reference_backbone(self):
        """The Backbone whose config and tokenizer the checkpoint copies (when
        `backbone_in_checkpoint`), else None."""
        return None

    def save_parts(self, folder: Path) -> None:
        """Write what `model.safetensors` does not hold (experts, adapters...). Default: nothing."""

    def load_parts(self, folder: Path) -> None:
        """Read back what `save_parts` wrote. Default: nothing."""

    # -- reporting ---------------------------------------------------------------------------
    def param_report(self) -> dict[str, Any]:
        """Total and trainable parameters; architectures add `loaded_for_inference` etc."""
        counts = count_parameters(self)
        counts["loaded_for_inference"] = counts["total"]
        return counts
