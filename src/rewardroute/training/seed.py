from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def part_seed(seed: int, *labels: str) -> int:
    """A seed for one named part of a run (a domain expert, a new head), stable across machines:
    each part starts from its own RNG state, whatever ran before it or was resumed."""
    if not labels:
        return seed
    digest = hashlib.sha256(":".join([str(seed), *labels]).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big")


def seeded_init(seed: int, *labels: str) -> None:
    """Seed the global RNGs before randomly initialised weights are built (heads, LoRA, routers).

    torch's default generator is seeded at random per process, so a model built before
    `train_loop` sets the seed got a different head every run.
    """
    set_seed(part_seed(seed, *labels))
