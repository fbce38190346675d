"""Forming pairs from several rated answers to one prompt, with a deterministic cap.

Two rules cover every source: "higher rating wins, with a minimum gap" (chat, summaries,
stories) and "a passing answer beats a failing one from another base model" (code).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Rated:
    """One answer to a prompt: who gave it, the text, and its rating."""

    key: str
    text: str
    score: float


@dataclass(frozen=True)
class Judged:
    """One answer to a coding task: the text, pass/fail, and the base models that gave it."""

    text: str
    passed: bool
    groups: frozenset[str]

    @property
    def label(self) -> str:
        # smallest base-model name: deterministic, readable in ids
        return min(self.groups)


def balanced_sample(items: Sequence[T], cap: int, seed: str,
                    keys: Callable[[T], tuple[Hashable, ...]]) -> list[T]:
    """Up to `cap` items in a seeded random order, spread over their keys.

    Round r takes (in the shuffled order) the items none of whose keys was used r times yet,
    so no answer (or model) fills the cap on its own when others are available. The result
    keeps the input order, so it is stable from run to run.
    """
    if len(items) <= cap:
        return list(items)
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)  # str seeds hash with sha512: stable across runs
    used: dict[Hashable, int] = {}
    picked: list[int] = []
    limit = 1
    while order and len(picked) < cap:
        rest = []
        for i in order:
            ks = keys(items[i])
            if len(picked) < cap and all(used.get(k, 0) < limit for k in ks):
                picked.append(i)
                for k in ks:
                    used[k] = used.get(k, 0) + 1
            else:
                rest.append(i)
        order, limit = rest, limit + 1
    return [items[i] for i in sorted(picked)]


def rated_pairs(answers: Sequence[Rated], *, min_gap: float, cap: int, seed: str) -> list[tuple[Rated, Rated]]:
    """(chosen, rejected) pairs with rating gap >= min_gap (ties always dropped), at most `cap`.

    Empty answers and pairs of identical texts are skipped: they teach nothing.
    """
    usable = [a for a in answers if a.text.strip()]
    pairs = []
    for a, b in itertools.combinations(usable, 2):
        gap = abs(a.score - b.score)
        if gap == 0 or gap < min_gap or a.text.strip() == b.text.strip():
            continue
        pairs.append((a, b) if a.score > b.score else (b, a))
    return balanced_sample(pairs, cap, seed, keys=lambda p: (p[0].key, p[1].key))


def dedupe_judged(answers: Sequence[tuple[str, bool, str]]) -> list[Judged]:
    """Merge identical answers (after stripping) from (text, passed, base model) triples.

    A text seen both passing and failing (a flaky or timed-out run) is dropped: its label is unsure.
    """
    by_text: dict[str, tuple[set[bool], set[str]]] = {}
    for text, passed, group in answers:
        t = text.strip()
        if not t:
            continue
        labels, groups = by_text.setdefault(t, (set(), set()))
        labels.add(passed)
        groups.add(group)
    return [Judged(t, next(iter(labels)), frozenset(groups))
            for t, (labels, groups) in sorted(by_text.items()) if len(labels) == 1]


def pass_fail_pairs(answers: Sequence[Judged], *, cap: int, seed: str) -> list[tuple[Judged, Judged]]:
    """(passing, failing) pairs whose base models are disjoint, at most `cap`, spread over answers.

    With hundreds of answers a task has ~10^5 candidate pairs; a seeded pool of 4 x cap answers
    on each side gives the same kind of sample without listing them all (falls back to the
    full list when the pool has too few eligible pairs).
    """
    good = [a for a in answers if a.passed]
    bad = [a for a in answers if not a.passed]
    pool = 4 * cap
    if len(good) > pool or len(bad) > pool:
        rng = random.Random(f"pool:{seed}")
        pairs = _eligible(rng.sample(good, min(pool, len(good))), rng.sample(bad, min(pool, len(bad))))
        if len(pairs) >= cap:
            return _spread(pairs, cap, seed)
    return _spread(_eligible(good, bad), cap, seed)


def _eligible(good: Sequence[Judged], bad: Sequence[Judged]) -> list[tuple[Judged, Judged]]:
    return [(g, b) for g in good for b in bad if not (g.groups & b.groups)]


def _spread(pairs: list[tuple[Judged, Judged]], cap: int, seed: str) -> list[tuple[Judged, Judged]]:
    return balanced_sample(pairs, cap, seed, keys=lambda p: (("pass", p[0].text), ("fail", p[1].text)))
