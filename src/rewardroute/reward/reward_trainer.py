"""Bradley-Terry training for any RewardModel, on the shared training loop."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from ..data.schemas import PreferencePair, render_prompt
from ..errors import ConfigError
from ..eval.pairwise import evaluate_reward_model
from ..training.loop import TrainResult, train_loop
from ..training.seed import seeded_init
from .base import RewardModel
from .reward_config import RewardTrainingConfig


def cap_pairs(pairs: Sequence[PreferencePair], max_pairs: int | None, seed: int) -> list[PreferencePair]:
    """At most `max_pairs`, shared as evenly as possible across domains (deterministic)."""
    pairs = list(pairs)
    if max_pairs is None or len(pairs) <= max_pairs:
        return pairs
    by: dict[str, list[PreferencePair]] = defaultdict(list)
    for p in pairs:
        by[p.domain].append(p)
    rng = random.Random(seed)
    queues = []
    for d in sorted(by):
        rng.shuffle(by[d])
        queues.append(by[d])
    out: list[PreferencePair] = []
    depth = 0
    while len(out) < max_pairs:  # round robin: small domains give all, large ones the rest
        for q in queues:
            if depth < len(q) and len(out) < max_pairs:
                out.append(q[depth])
        depth += 1
    return out


def cap_per_domain(pairs: Sequence[PreferencePair], cap: int | None, seed: int) -> dict[str, list[PreferencePair]]:
    """At most `cap` pairs of each domain (deterministic sample), grouped by domain."""
    by: dict[str, list[PreferencePair]] = defaultdict(list)
    for p in pairs:
        by[p.domain].append(p)
    return {d: cap_pairs(v, cap, seed) for d, v in sorted(by.items())}


def balance_length(pairs: Sequence[PreferencePair], n: int | None, seed: int) -> list[PreferencePair]:
    """Up to `n` pairs, as many where the chosen answer is the longer one (in characters) as where
    it is the shorter one; ties are left out. Length then carries no signal a model could learn
    in place of the preference (a length-debiasing step; deterministic for a seed)."""
    longer = [p for p in pairs if len(p.chosen) > len(p.rejected)]
    shorter = [p for p in pairs if len(p.chosen) < len(p.rejected)]
    half = min(len(longer), len(shorter)) if n is None else min(n // 2, len(longer), len(shorter))
    return cap_pairs(longer, half, seed) + cap_pairs(shorter, half, seed)


def fit_pairwise(model: RewardModel, train: Sequence[PreferencePair], valid: Sequence[PreferencePair],
                 args: RewardTrainingConfig, *, resume_dir: Path | None = None, desc: str = "rm",
                 use_domains: bool = False, head_prefixes: Sequence[str] = ("head",)) -> TrainResult:
    """Train `model` with the Bradley-Terry loss; keep the epoch with the best valid accuracy."""
    if not train:
        raise ConfigError("no training pairs")
    train = cap_pairs(train, args.max_pairs, args.seed)
    valid = cap_pairs(valid, args.eval_max_pairs, args.seed) if valid else []

    def step(batch: list[PreferencePair]):
        return model.pair_loss([render_prompt(p.prompt) for p in batch], [p.chosen for p in batch],
                               [p.rejected for p in batch], [p.domain for p in batch] if use_domains else None)

    def evaluate() -> float:
        return evaluate_reward_model(model, valid, batch_size=args.eval_batch_size)["accuracy"]["overall"]

    overrides = {prefix: args.head_lr for prefix in head_prefixes} if args.head_lr else None
    return train_loop(model, train, step, evaluate if valid else None, args, resume_dir=resume_dir,
                      desc=desc, lr_overrides=overrides, job_key=model.config.model_dump_json())


def build_for_training(cls: type[RewardModel], config, seed: int) -> RewardModel:
    """`cls.build(config)` with the RNGs seeded first, so its new heads and adapters start the
    same for the same seed (bit-identical checkpoints for the same command)."""
    seeded_init(seed, "build")
    return cls.build(config)


def train_reward_model(model: RewardModel, train: Sequence[PreferencePair], valid: Sequence[PreferencePair],
                       args: RewardTrainingConfig, out: str | Path) -> TrainResult:
    """Train with the architecture's own `fit`, then save to `out` atomically with its history."""
    from .checkpoint import save_model

    from ..runtime import is_main_process

    out = Path(out)
    resume_dir = out.with_name(out.name + ".resume")
    result = model.fit(train, valid, args, resume_dir=resume_dir)
    if is_main_process():  # under a multi-process launch every rank holds the same weights
        save_model(model, out, extra={"training": {"args": args.model_dump(), "best_epoch": result.best_epoch,
                                                   "best_valid_accuracy": result.best_metric,
                                                   "history": result.history, "seconds": result.seconds,
                                                   "train_pairs": len(cap_pairs(train, args.max_pairs, args.seed))}})
        _remove_tree(resume_dir)
    return result


def _remove_tree(path: Path) -> None:
    import shutil
    shutil.rmtree(path, ignore_errors=True)
