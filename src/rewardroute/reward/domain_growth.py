"""How a routed reward model grows a domain without retraining the others (used by its `add_domain`).

The new domain gets its own expert (a `single` model for rodos, a LoRA adapter and head for
arliss), trained on that domain's pairs only. The router gains one output; only that output's
row of the head learns, on the kept routing prompts of the old domains plus the new domain's
prompts, so every existing expert, and the router's logits for the existing domains, stay
bit-identical. A prompt can only move to the new domain, never between old ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..data.schemas import PreferencePair
from ..errors import ConfigError
from ..router import ExpertRouter, fit_router, one_hot
from ..training.seed import seeded_init
from .routed import DomainRouterSettings, KeptPrompts, freeze, on_cached_embeddings, part_name, routing_metric


def new_domain_pairs(model, domain: str, train: Sequence[PreferencePair],
                     valid: Sequence[PreferencePair]) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """The new domain's pairs; clear errors for a domain the model has or the data lacks."""
    if not domain or not domain.strip():
        raise ConfigError("the new domain needs a name")
    if domain in model.config.domains:
        raise ConfigError(f"domain '{domain}' is already in this {model.arch} model (its domains: "
                          f"{model.config.domains}); add-domain adds a new one")
    clash = [d for d in model.config.domains if part_name("", d) == part_name("", domain)]
    if clash:
        raise ConfigError(f"domain '{domain}' would share a folder name with existing domain '{clash[0]}'")
    pairs = [p for p in train if p.domain == domain]
    if not pairs:
        present = sorted({p.domain for p in train})
        raise ConfigError(f"domain '{domain}' is absent from the training data (it has {present})")
    return pairs, [p for p in valid if p.domain == domain]


def extend_router(router: ExpertRouter, domain: str, kept: KeptPrompts, texts: Sequence[str],
                  valid_texts: Sequence[str], settings: DomainRouterSettings, args, *,
                  resume_dir: Path | None = None) -> dict[str, Any]:
    """Append `domain` to the router and fit only its output row (see the module docstring);
    `args` are the run's training settings (seed, device, precision)."""
    seed = args.seed
    if not kept.get("train")[0]:
        raise ConfigError("this checkpoint keeps no routing prompts of its domains (routing_prompts.jsonl), "
                          "so its router cannot be extended; retrain it with router.keep_per_domain > 0")
    kept.add(texts, [domain] * len(texts), "train", settings.keep_per_domain, seed)
    kept.add(valid_texts, [domain] * len(valid_texts), "valid", settings.keep_per_domain, seed)
    seeded_init(seed, "router", domain)  # the new output row starts the same for a seed
    router.add_experts([domain])
    out = router.head.out
    n_old = out.out_features - 1
    freeze(router)
    out.weight.requires_grad_(True)
    out.bias.requires_grad_(True)
    hooks = [out.weight.register_hook(lambda g: _zero_rows(g, n_old)),
             out.bias.register_hook(lambda g: _zero_rows(g, n_old))]
    t_texts, t_labels = kept.get("train")
    v_texts, v_labels = kept.get("valid")
    try:
        with on_cached_embeddings(router):  # the backbone (and a router adapter) stay fixed
            # no weight decay: it would move the old rows
            result = fit_router(router, t_texts, one_hot(t_labels, router.experts),
                                settings.training(args, "head", weight_decay=0.0),
                                valid_texts=v_texts or None,
                                valid_targets=one_hot(v_labels, router.experts) if v_texts else None,
                                metric=routing_metric(one_hot(v_labels, router.experts)) if v_texts else None,
                                resume_dir=resume_dir, desc=f"router + {domain}")
    finally:
        for h in hooks:
            h.remove()
    return {"valid_accuracy": result.best_metric, "prompts": len(t_texts), "seconds": result.seconds}


def _zero_rows(grad: torch.Tensor, n_old: int) -> torch.Tensor:
    grad = grad.clone()
    grad[:n_old] = 0
    return grad
