"""Bradley-Terry training of any RewardModel on the shared training loop (what each
architecture's `fit` calls for its end-to-end parts)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.sampling import cap_pairs
from ..data.schemas import PreferencePair, render_prompt
from ..errors import ConfigError
from ..eval.baselines import fit_baselines, margin_graded
from ..eval.pairwise import evaluate_reward_model, pair_margins
from ..training.loop import TrainResult, train_loop
from .base import RewardModel
from .reward_config import RewardTrainingConfig


def fit_pairwise(model: RewardModel, train: Sequence[PreferencePair], valid: Sequence[PreferencePair],
                 args: RewardTrainingConfig, *, resume_dir: Path | None = None, desc: str = "rm",
                 use_domains: bool = False, head_prefixes: Sequence[str] = ("head",)) -> TrainResult:
    """Train `model` with the Bradley-Terry loss; keep the epoch with the best valid accuracy."""
    if not train:
        raise ConfigError("no training pairs")
    train = cap_pairs(train, args.max_pairs, args.seed)
    valid = cap_pairs(valid, args.eval_max_pairs, args.seed) if valid else []
    prior = fit_baselines(train) if args.surface_prior else None
    valid_prior = prior.surface_margin(valid) if prior and valid else None

    def step(batch: list[PreferencePair]):
        offset = torch.as_tensor(prior.surface_margin(batch), dtype=torch.float32) if prior else None
        return model.pair_loss([render_prompt(p.prompt) for p in batch], [p.chosen for p in batch],
                               [p.rejected for p in batch], [p.domain for p in batch] if use_domains else None,
                               offset=offset)

    def evaluate() -> float:
        if prior is None:
            return evaluate_reward_model(model, valid, batch_size=args.eval_batch_size)["accuracy"]["overall"]
        margins = pair_margins(model, valid, batch_size=args.eval_batch_size) + valid_prior
        return float(np.mean(margin_graded(margins)))

    overrides = {prefix: args.head_lr for prefix in head_prefixes} if args.head_lr else None
    return train_loop(model, train, step, evaluate if valid else None, args, resume_dir=resume_dir,
                      desc=desc, lr_overrides=overrides, job_key=model.config.model_dump_json())
