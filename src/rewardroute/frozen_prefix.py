"""Run the frozen lower layers once: cache their output per text, replay only the layers that train.

Fine-tuning with the input embeddings and the lowest n layers frozen (`freeze_lower_layers`)
recomputes the same hidden states for those layers every epoch. `PrefixCache` computes them
once and each step then runs only the top layers: with MiniLM's 4 of 6 layers frozen (the
`zooter-ft` default) a step costs about a third of the forward pass it did.

One difference from recomputing: the cached pass runs in eval mode, so the frozen layers apply
no dropout during training (`RouterTrainingConfig.cache_frozen_layers=false` restores it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from .backbone import Backbone, pool, transformer_layers


def frozen_prefix(model: nn.Module) -> int:
    """How many of the lowest transformer layers, with the input embeddings below them, have no
    trainable parameter (0 when the embeddings train)."""
    embeddings = getattr(model, "embeddings", None) or model.get_input_embeddings()
    if any(p.requires_grad for p in embeddings.parameters()):
        return 0
    n = 0
    for layer in transformer_layers(model):
        if any(p.requires_grad for p in layer.parameters()):
            break
        n += 1
    return n


class _HandOn(nn.Module):
    """Stands in for an embedding block: hands on the hidden states passed as `inputs_embeds`."""

    def forward(self, *args, inputs_embeds: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        return inputs_embeds


def _owner(model: nn.Module, child: nn.Module) -> tuple[nn.Module, str]:
    for module in model.modules():
        for name, c in module.named_children():
            if c is child:
                return module, name
    raise ValueError(f"{type(child).__name__} is not inside {type(model).__name__}")


@contextmanager
def top_layers_only(model: nn.Module, n: int) -> Iterator[None]:
    """Within the block, `model(inputs_embeds=h, attention_mask=m)` takes `h` as the output of
    layer n and runs layers n.. only; the model's own code still builds the attention mask (and
    a decoder's positions). BERT-family models add positions in their `embeddings` block, which
    is bypassed; Llama-family ones skip the token lookup when given `inputs_embeds`."""
    layers = transformer_layers(model)
    slots = [(*_owner(model, layers), nn.ModuleList(list(layers)[n:]))]
    embeddings = getattr(model, "embeddings", None)
    if isinstance(embeddings, nn.Module):
        slots.append((*_owner(model, embeddings), _HandOn()))
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in slots]
    try:
        for owner, name, stand_in in slots:
            setattr(owner, name, stand_in)
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


class PrefixCache:
    """The output of the frozen embeddings and lowest `layers` layers for each of `texts`,
    computed once without gradients; `pooled(indices)` runs the remaining layers (with gradients
    when they train) and pools, giving what `backbone` would give for those texts."""

    def __init__(self, backbone: Backbone, texts: Sequence[str], layers: int, batch_size: int = 32):
        if not 0 < layers < len(transformer_layers(backbone.model)):
            raise ValueError(f"a prefix of {layers} layers leaves no layer to replay")
        self.backbone, self.layers = backbone, layers
        encoded = backbone.pairs.encode_texts(list(texts))
        self.states: list[torch.Tensor] = [torch.empty(0)] * len(encoded)
        device = next(backbone.model.parameters()).device
        was = backbone.training
        backbone.eval()
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
        with torch.no_grad():
            for s in range(0, len(order), batch_size):
                idx = order[s:s + batch_size]
                enc = backbone.pairs.pad([encoded[i] for i in idx])
                kwargs = {"input_ids": enc["input_ids"].to(device), "attention_mask": enc["attention_mask"].to(device)}
                if backbone.uses_token_types:
                    kwargs["token_type_ids"] = enc["token_type_ids"].to(device)
                hidden = backbone.model(**kwargs, output_hidden_states=True).hidden_states[layers]
                for row, i in enumerate(idx):
                    self.states[i] = hidden[row, :len(encoded[i].input_ids)].clone()
        backbone.train(was)

    def __len__(self) -> int:
        return len(self.states)

    def pooled(self, indices: Sequence[int]) -> torch.Tensor:
        """Pooled vectors [B, H] of the texts at `indices` (right-padded to the longest)."""
        rows = [self.states[i] for i in indices]
        width = max(len(r) for r in rows)
        hidden = rows[0].new_zeros((len(rows), width, rows[0].size(-1)))
        mask = torch.zeros((len(rows), width), dtype=torch.long, device=hidden.device)
        for b, r in enumerate(rows):
            hidden[b, :len(r)] = r
            mask[b, :len(r)] = 1
        with top_layers_only(self.backbone.model, self.layers):
            out = self.backbone.model(inputs_embeds=hidden, attention_mask=mask).last_hidden_state
        return pool(out, mask, self.backbone.pooling)
