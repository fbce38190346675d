"""`more`: Mixture of Reward Experts, one model whose backbone routes each token internally.

The FFN of the last `moe_layers` layers becomes a sparse MoE block (see `moe.py`) with
`n_experts` experts (default: one per training domain) and top-2 gating, upcycled from the
pretrained FFN. Training adds a load-balancing loss and, optionally, supervises the gate with
the domain labels: expert i is nudged towards domain i (cross-entropy on each row's mean gate
distribution), which makes the experts domain experts rather than arbitrary token clusters.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from ..backbone import Backbone
from ..errors import ConfigError
from .base import RewardModel, RewardModelConfig, RewardOutput
from .end_to_end import TrainedEndToEnd
from .moe import MoEFeedForward, upcycle
from .single import RewardHead


class MoREConfig(RewardModelConfig):
    arch: Literal["more"] = "more"
    head_dropout: float = 0.1
    # Last 2 layers: a third of MiniLM's 6, where features are most task-specific; each
    # upcycled layer adds (n_experts - 1) copies of a FFN block.
    moe_layers: int = Field(default=2, ge=1)
    n_experts: int | None = Field(default=None, ge=2)  # None: one per domain
    top_k: int = Field(default=2, ge=1)
    load_balance_coef: float = Field(default=0.01, ge=0)
    # > 0 supervises the gate with domain labels (needs one expert per domain).
    gate_supervision: float = Field(default=0.1, ge=0)


class MoRERewardModel(TrainedEndToEnd, RewardModel):
    arch = "more"
    config_class = MoREConfig

    def __init__(self, config: MoREConfig, backbone: Backbone):
        super().__init__(config)
        n_experts = config.n_experts or len(config.domains)
        if n_experts < 2:
            raise ConfigError("more needs at least 2 experts: set model.n_experts or train on 2+ domains")
        if config.gate_supervision > 0 and n_experts != len(config.domains):
            raise ConfigError(f"gate_supervision maps expert i to domain i, so it needs one expert per domain "
                              f"({len(config.domains)}), not {n_experts}; set model.gate_supervision=0")
        self.backbone = backbone
        self.blocks: list[MoEFeedForward] = upcycle(backbone.model, config.moe_layers, n_experts, config.top_k)
        self.head = RewardHead(backbone.hidden_size, config.head_dropout)
        self.n_experts = n_experts

    @classmethod
    def build(cls, config: MoREConfig, *, pretrained: bool = True,
              local_dir: str | Path | None = None) -> "MoRERewardModel":
        return cls(config, Backbone.load(config.backbone, pretrained=pretrained, local_dir=local_dir))

    def reference_backbone(self):
        return self.backbone

    def forward(self, prompts: Sequence[str], responses: Sequence[str],
                domains: Sequence[str] | None = None) -> RewardOutput:
        enc = self.backbone.pairs.pad(self.backbone.pairs.encode_pairs(prompts, responses))
        device = self.head.linear.weight.device
        enc = {k: v.to(device) for k, v in enc.items()}
        for block in self.blocks:
            block.token_mask = enc["attention_mask"]
        try:
            pooled = self.backbone(**enc)
        finally:
            for block in self.blocks:
                block.token_mask = None
        aux = self.config.load_balance_coef * torch.stack([b.stats.load_balance for b in self.blocks]).mean()
        gate = torch.stack([b.stats.seq_gate for b in self.blocks]).mean(dim=0)  # [B, E]
        if self.config.gate_supervision > 0 and domains is not None and self.training:
            target = torch.tensor([self._domain_index(d) for d in domains], device=device)
            aux = aux + self.config.gate_supervision * F.nll_loss(gate.clamp_min(1e-9).log(), target)
        # A supervised gate is a domain classifier: report it like a router.
        probs = gate.detach() if self.config.gate_supervision > 0 else None
        return RewardOutput(rewards=self.head(pooled), aux_loss=aux, domain_probs=probs)

    def _domain_index(self, domain: str) -> int:
        try:
            return self.config.domains.index(domain)
        except ValueError:
            raise ConfigError(f"domain '{domain}' was not among the training domains {self.config.domains}") from None

    def fit(self, train, valid, args, *, resume_dir: Path | None = None):
        from .pairwise_fit import fit_pairwise
        missing = sorted(set(self.config.domains) - {p.domain for p in train})
        if self.config.gate_supervision > 0 and missing:
            raise ConfigError(f"domains {missing} have no training pairs; the supervised gate needs every domain")
        gates = tuple(n.removesuffix("weight") for n, _ in self.named_parameters() if n.endswith(".gate.weight"))
        # Gates start from scratch: they learn at the head's rate when one is given.
        return fit_pairwise(self, train, valid, args, resume_dir=resume_dir, desc="train more",
                            use_domains=self.config.gate_supervision > 0, head_prefixes=("head", *gates))

    def param_report(self) -> dict[str, Any]:
        report = super().param_report()
        idle = sum((self.n_experts - b.top_k) * b.expert_parameters() for b in self.blocks)
        report["active_per_token"] = report["total"] - idle
        report["experts"] = self.n_experts
        report["moe_layers"] = len(self.blocks)
        return report
