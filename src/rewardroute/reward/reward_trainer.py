"""Training a reward model end to end (`rm train`): build it seeded, fit it, save it with its history.

The models never import this module; it imports them (through the registry and checkpoints)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..data.sampling import cap_pairs
from ..data.schemas import PreferencePair
from ..training.loop import TrainResult
from ..training.seed import seeded_init
from .base import RewardModel
from .reward_config import RewardTrainingConfig


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
