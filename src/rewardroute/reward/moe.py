"""Sparse mixture-of-experts feed-forward blocks, upcycled from a pretrained backbone.

`upcycle(hf_model, n_layers, n_experts)` replaces the feed-forward block of the last
`n_layers` transformer layers with a `MoEFeedForward`: `n_experts` copies of the pretrained
block (so the model computes exactly what it did before training starts) and a linear
top-k gate per token. Two layouts are recognised:
  * BERT-like encoders: `layer.intermediate` (dense + activation) then `layer.output.dense`;
    the MoE takes the place of `intermediate` and `output.dense` becomes the identity, so
    `output` still adds dropout, the residual and the LayerNorm.
  * LLaMA-like decoders (and most others): `layer.mlp`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError


@dataclass
class MoEStats:
    load_balance: torch.Tensor  # Switch-Transformer auxiliary loss (1.0 when perfectly balanced)
    seq_gate: torch.Tensor  # [B, E] mean gate probability over each row's real tokens


class _BertFFN(nn.Module):
    """BERT's feed-forward block as one module: intermediate.dense, activation, output.dense."""

    def __init__(self, intermediate: nn.Module, out_dense: nn.Linear):
        super().__init__()
        self.intermediate = intermediate
        self.dense = out_dense

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.intermediate(x))


class MoEFeedForward(nn.Module):
    """Top-k gated experts over tokens. Pad tokens are skipped (the caller sets `token_mask`)."""

    def __init__(self, template: nn.Module, hidden: int, n_experts: int, top_k: int = 2):
        super().__init__()
        if not 1 <= top_k <= n_experts:
            raise ConfigError(f"top_k must be between 1 and the number of experts ({n_experts}), got {top_k}")
        self.experts = nn.ModuleList(copy.deepcopy(template) for _ in range(n_experts))
        self.gate = nn.Linear(hidden, n_experts, bias=False)
        # Small random gate: identical experts need some asymmetry to start specialising.
        nn.init.normal_(self.gate.weight, std=0.02)
        self.top_k = top_k
        self.token_mask: torch.Tensor | None = None  # [B, T], set per batch by the owner
        self.stats: MoEStats | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        mask = self.token_mask
        if mask is not None and mask.shape == shape[:-1]:
            real = mask.reshape(-1).nonzero(as_tuple=True)[0]
        else:
            real = torch.arange(flat.size(0), device=x.device)
            mask = torch.ones(shape[:-1], device=x.device)
        tokens = flat[real]
        probs = F.softmax(self.gate(tokens), dim=-1)  # [N, E]
        top_p, top_i = probs.topk(self.top_k, dim=-1)
        top_p = top_p / top_p.sum(dim=-1, keepdim=True)  # renormalise: k identical experts = the original block
        out = torch.zeros_like(tokens)
        for e, expert in enumerate(self.experts):
            rows, slot = (top_i == e).nonzero(as_tuple=True)
            if rows.numel():
                out.index_add_(0, rows, expert(tokens[rows]) * top_p[rows, slot].unsqueeze(-1))
        self.stats = self._stats(probs, top_i, real, mask)
        result = torch.zeros_like(flat)
        result[real] = out
        return result.reshape(shape)

    def _stats(self, probs: torch.Tensor, top_i: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> MoEStats:
        n_exp = probs.size(-1)
        # Switch/GShard balance: E * sum_e (share of routed slots to e) * (mean gate prob of e)
        share = F.one_hot(top_i, n_exp).float().sum(dim=1).mean(dim=0) / self.top_k
        balance = n_exp * (share * probs.mean(dim=0)).sum()
        # per-row mean gate distribution (for supervision by domain labels)
        b, t = mask.shape
        row = real // t
        sums = torch.zeros(b, n_exp, device=probs.device, dtype=probs.dtype).index_add_(0, row, probs)
        counts = torch.bincount(row, minlength=b).clamp(min=1).unsqueeze(-1).to(probs.dtype)
        return MoEStats(load_balance=balance, seq_gate=sums / counts)

    def expert_parameters(self) -> int:
        return sum(p.numel() for p in self.experts[0].parameters())


# -- finding and replacing the feed-forward blocks ---------------------------------------------

def transformer_layers(hf_model: nn.Module) -> nn.ModuleList:
    """The stack of transformer layers: the longest ModuleList whose items hold a FFN block."""
    best = None
    for module in hf_model.modules():
        if isinstance(module, nn.ModuleList) and len(module) and _layout(module[0]) is not None:
            if best is None or len(module) > len(best):
                best = module
    if best is None:
        raise ConfigError(f"cannot find feed-forward blocks in {type(hf_model).__name__}; MoRE supports "
                          "BERT-like encoders (intermediate/output) and LLaMA-like decoders (mlp)")
    return best


def _layout(layer: nn.Module) -> str | None:
    if hasattr(layer, "intermediate") and hasattr(getattr(layer, "output", None), "dense"):
        return "bert"
    if isinstance(getattr(layer, "mlp", None), nn.Module):
        return "mlp"
    return None


def upcycle(hf_model: nn.Module, n_layers: int, n_experts: int, top_k: int = 2) -> list[MoEFeedForward]:
    """Turn the FFN of the last `n_layers` layers into MoE blocks (in place); returns them."""
    layers = transformer_layers(hf_model)
    if not 1 <= n_layers <= len(layers):
        raise ConfigError(f"moe_layers must be between 1 and {len(layers)} for this backbone, got {n_layers}")
    hidden = hf_model.config.hidden_size
    blocks = []
    for layer in list(layers)[len(layers) - n_layers:]:
        if _layout(layer) == "bert":
            moe = MoEFeedForward(_BertFFN(layer.intermediate, layer.output.dense), hidden, n_experts, top_k)
            layer.intermediate = moe
            layer.output.dense = nn.Identity()
        else:
            moe = MoEFeedForward(layer.mlp, hidden, n_experts, top_k)
            layer.mlp = moe
        blocks.append(moe)
    return blocks
