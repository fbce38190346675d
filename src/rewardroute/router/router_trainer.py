"""Train an ExpertRouter on target distributions with the KL loss.

Hard labels are the one-hot case (`one_hot`). With a frozen backbone the texts are embedded
once and only the head trains, which takes seconds; with `finetune=True` every step runs the
backbone, or, when its lower layers are frozen, only the layers above them (`frozen_prefix`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from ..backbone import transformer_layers
from ..data.schemas import render_prompt
from ..errors import ConfigError
from ..frozen_prefix import PrefixCache, frozen_prefix
from ..training.loop import TrainResult, train_loop
from .model import ExpertRouter
from .router_config import RouterTrainingConfig

MetricFn = Callable[[torch.Tensor], float]  # valid probs [N, K] -> metric (higher is better)


def one_hot(labels: Sequence[str], experts: Sequence[str]) -> torch.Tensor:
    index = {e: i for i, e in enumerate(experts)}
    unknown = sorted({l for l in labels if l not in index})
    if unknown:
        raise ConfigError(f"labels {unknown} are not among the experts {list(experts)}")
    t = torch.zeros(len(labels), len(experts))
    t[torch.arange(len(labels)), torch.tensor([index[l] for l in labels], dtype=torch.long)] = 1.0
    return t


def top1_agreement(targets: torch.Tensor) -> MetricFn:
    """Share of texts whose most likely expert is the target's most likely expert."""
    want = targets.argmax(dim=-1)
    return lambda probs: (probs.argmax(dim=-1) == want).float().mean().item()


def kl_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """KL(target || softmax(logits)), averaged over the batch."""
    return F.kl_div(F.log_softmax(logits, dim=-1), targets, reduction="batchmean")


def head_penalty(router: ExpertRouter) -> torch.Tensor:
    return sum((m.weight ** 2).sum() for m in router.head.modules() if isinstance(m, torch.nn.Linear))


def _cacheable_prefix(router: ExpertRouter, args: RouterTrainingConfig, backbone_kwargs: dict) -> int:
    """Frozen lower layers worth caching: none when adapters are switched per batch
    (`backbone_kwargs`) or when no layer above them would train."""
    if not args.cache_frozen_layers or backbone_kwargs:
        return 0
    prefix = frozen_prefix(router.backbone.model)
    return prefix if prefix < len(transformer_layers(router.backbone.model)) else 0


@torch.no_grad()
def cached_probs(router: ExpertRouter, cache: PrefixCache, batch_size: int) -> torch.Tensor:
    """`router.probs` for the texts of `cache`, replaying only the layers above its prefix."""
    was = router.training
    router.eval()
    pooled = torch.cat([cache.pooled(range(s, min(s + batch_size, len(cache)))).float().cpu()
                        for s in range(0, len(cache), batch_size)])
    router.train(was)
    return router.probs_from_embeddings(pooled)


def fit_router(router: ExpertRouter, texts: Sequence[str], targets: torch.Tensor, args: RouterTrainingConfig,
               *, valid_texts: Sequence[str] | None = None, valid_targets: torch.Tensor | None = None,
               metric: MetricFn | None = None, resume_dir: Path | None = None, desc: str = "router",
               train_embeddings: torch.Tensor | None = None,
               valid_embeddings: torch.Tensor | None = None, **backbone_kwargs) -> TrainResult:
    """Fit the router to `targets` ([N, K], rows summing to 1). Keeps the best valid epoch.

    `train_embeddings`/`valid_embeddings` let a caller reuse frozen-backbone vectors it
    already has (cross-validation does). `backbone_kwargs` reach the backbone (adapters).
    """
    if len(texts) != targets.size(0):
        raise ConfigError(f"{len(texts)} texts but {targets.size(0)} target rows")
    if targets.size(1) != len(router.experts):
        raise ConfigError(f"targets have {targets.size(1)} columns, the router has {len(router.experts)} experts")
    targets = targets.float()
    has_valid = valid_texts is not None and valid_targets is not None and len(valid_texts) > 0
    if has_valid and metric is None:
        metric = top1_agreement(valid_targets)
    frozen = not router.config.finetune

    if frozen:
        emb = train_embeddings if train_embeddings is not None else router.embed(texts, **backbone_kwargs)
        v_emb = None
        if has_valid:
            v_emb = valid_embeddings if valid_embeddings is not None else router.embed(valid_texts, **backbone_kwargs)

        def step(batch: list[int]):
            idx = torch.tensor(batch)
            logits = router.head(emb[idx].to(router.head.out.weight.device))
            kl = kl_loss(logits, targets[idx].to(logits.device))
            return kl + args.head_l2 * head_penalty(router), {"kl": kl.item()}

        def evaluate() -> float:
            return metric(router.probs_from_embeddings(v_emb))
    elif prefix := _cacheable_prefix(router, args, backbone_kwargs):
        train_cache = PrefixCache(router.backbone, texts, prefix, args.eval_batch_size)
        v_cache = PrefixCache(router.backbone, [render_prompt(t) for t in valid_texts], prefix,
                              args.eval_batch_size) if has_valid else None

        def step(batch: list[int]):
            logits = router.head(train_cache.pooled(batch).to(router.head.out.weight.device))
            kl = kl_loss(logits, targets[torch.tensor(batch)].to(logits.device))
            return kl + args.head_l2 * head_penalty(router), {"kl": kl.item()}

        def evaluate() -> float:
            return metric(cached_probs(router, v_cache, args.eval_batch_size))
    else:
        def step(batch: list[int]):
            logits = router([texts[i] for i in batch], **backbone_kwargs)
            kl = kl_loss(logits, targets[torch.tensor(batch)].to(logits.device))
            return kl + args.head_l2 * head_penalty(router), {"kl": kl.item()}

        def evaluate() -> float:
            return metric(router.probs(valid_texts, batch_size=args.eval_batch_size, **backbone_kwargs))

    overrides = {"head": args.head_lr} if args.head_lr and not frozen else None
    return train_loop(router, list(range(len(texts))), step, evaluate if has_valid else None, args,
                      resume_dir=resume_dir, desc=desc, lr_overrides=overrides,
                      job_key=router.config.model_dump_json())
