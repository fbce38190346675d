"""Deterministic samples of preference pairs: caps spread across domains, and length balance."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from .schemas import PreferencePair


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
