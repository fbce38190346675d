"""Run one LoRA adapter at the speed of the plain backbone.

An unmerged LoRA layer computes `W x + B(A x)`: two extra small matmuls per targeted Linear,
which on a CPU cost far more than their FLOPs. When a whole batch uses one adapter, the same
result is `(W + s·B A) x`. `MergedAdapters` keeps that merged weight per adapter and swaps it
in for the duration of a forward pass with the adapters disabled. It never writes into the base
weights (PEFT's `merge_adapter` adds and later subtracts the delta, which drifts in floating
point over thousands of batches): the original parameters are put back exactly.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


def _lora_layers(model: nn.Module, name: str) -> list[nn.Module]:
    from peft.tuners.lora import LoraLayer

    return [m for m in model.modules() if isinstance(m, LoraLayer) and name in getattr(m, "lora_A", {})]


class MergedAdapters:
    """Merged weights of a PEFT model's LoRA adapters, computed on first use and again after the
    model moves to another device or dtype. Call `clear()` whenever an adapter changes (training,
    loading)."""

    def __init__(self, peft_model: nn.Module):
        self.peft = peft_model
        self._weights: dict[tuple, list[tuple[nn.Module, torch.Tensor]]] = {}

    def clear(self) -> None:
        self._weights.clear()

    def _merged(self, name: str) -> list[tuple[nn.Module, torch.Tensor]]:
        w = next(self.peft.parameters())
        key = (name, w.device, w.dtype)
        if key not in self._weights:
            with torch.no_grad():
                self._weights[key] = [(m, m.base_layer.weight + m.get_delta_weight(name).to(m.base_layer.weight.dtype))
                                      for m in _lora_layers(self.peft, name)]
        return self._weights[key]

    @contextmanager
    def view(self, name: str):
        """Inside the block, the model computes as if adapter `name` were merged into the base
        weights (inference only: nothing here tracks gradients)."""
        merged = self._merged(name)
        saved = [(m, m.base_layer.weight) for m, _ in merged]
        # leaving `disable_adapter` makes the active adapter trainable again: keep the flags as they were
        flags = [(p, p.requires_grad) for p in self.peft.parameters()]
        try:
            for m, w in merged:
                m.base_layer.weight = nn.Parameter(w, requires_grad=False)
            with self.peft.disable_adapter():
                yield
        finally:
            for m, w in saved:
                m.base_layer.weight = w
            for p, flag in flags:
                p.requires_grad_(flag)
