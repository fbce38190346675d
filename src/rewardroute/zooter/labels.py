"""From per-model scores to the router's target distributions (Zooter, Lu et al. 2024).

* score matrix: records -> S [N, K] over a fixed model list; a record lacking a score for
  any of the models is skipped and counted (or rejected with file:line when strict);
* normalisation: `minmax` maps the training scores to [0, 1] so that one temperature works
  for judge win-probabilities, 0/1 correctness and unbounded reward-model logits alike;
* soft labels: s(q) = softmax(S[q] / T);
* hard labels (the paper's ablation): all mass on the best model (shared equally on ties);
* tag enhancement: s*(q) = beta * s(q) + (1 - beta) * mean over q's tags t of s_t, where s_t
  is the mean of s over the training queries carrying t (queries without tags keep s(q));
* auto tags: k-means (k-means++ seeding) on query embeddings, for data without tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.schemas import RoutingRecord
from ..errors import ConfigError, DataError


# -- scores ------------------------------------------------------------------------------------

@dataclass
class ScoreTable:
    """Records that have a score for every model, as a matrix in `models` order."""

    records: list[RoutingRecord]
    models: list[str]
    scores: np.ndarray  # [N, K] float64
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)

    @property
    def tags(self) -> list[list[str]]:
        return [r.tags for r in self.records]

    def costs(self) -> np.ndarray | None:
        """[N, K] per-query costs when every kept record has them, else None."""
        if not self.records or any(not r.costs or any(m not in r.costs for m in self.models) for r in self.records):
            return None
        return np.array([[r.costs[m] for m in self.models] for r in self.records], dtype=float)


def models_in(records: Sequence[RoutingRecord]) -> list[str]:
    """Every model scored in any record, in first-seen order."""
    seen: dict[str, None] = {}
    for r in records:
        for m in r.scores:
            seen.setdefault(m, None)
    return list(seen)


def score_table(records: Sequence[RoutingRecord], models: Sequence[str] | None = None, *, strict: bool = False,
                path: str | Path | None = None, lines: Sequence[int] | None = None) -> ScoreTable:
    """Keep the records scored for all `models` (default: every model seen).

    A record that lacks one of them (no score, a null score, or a backend error) is skipped
    and counted; with `strict=True` it raises a DataError naming file:line instead.
    """
    models = list(models) if models is not None else models_in(records)
    if not models:
        raise ConfigError("no scored models in the data")
    kept, rows, skipped, examples = [], [], 0, []
    for i, r in enumerate(records):
        missing = [m for m in models if r.scores.get(m) is None]
        if missing:
            line = lines[i] if lines is not None else i + 1
            msg = f"no score for {len(missing)} model(s): {missing[:3]}"
            if strict:
                raise DataError(msg, path=path, line=line, field="scores")
            skipped += 1
            if len(examples) < 3:
                examples.append(f"{path or 'record'}:{line} (id {r.id}): {msg}")
            continue
        kept.append(r)
        rows.append([float(r.scores[m]) for m in models])
    scores = np.array(rows, dtype=float).reshape(len(rows), len(models))
    if not np.isfinite(scores).all():
        raise DataError("scores must be finite numbers", path=path, field="scores")
    return ScoreTable(kept, models, scores, skipped, examples)


@dataclass(frozen=True)
class Normalizer:
    """An affine map fitted on training scores (kept in the router's metadata)."""

    how: str = "minmax"
    shift: float = 0.0
    scale: float = 1.0

    @classmethod
    def fit(cls, scores: np.ndarray, how: str) -> "Normalizer":
        if how == "none":
            return cls("none")
        if how == "minmax":
            lo, hi = float(scores.min()), float(scores.max())
            return cls(how, lo, hi - lo if hi > lo else 1.0)
        if how == "zscore":
            sd = float(scores.std())
            return cls(how, float(scores.mean()), sd if sd > 0 else 1.0)
        raise ConfigError(f"unknown normalisation '{how}' (none, minmax, zscore)")

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return (scores - self.shift) / self.scale


# -- labels ------------------------------------------------------------------------------------

def soft_labels(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax(scores / T)."""
    if temperature <= 0:
        raise ConfigError("temperature must be positive")
    z = scores / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def hard_labels(scores: np.ndarray) -> np.ndarray:
    """All mass on the best model of each row; ties share it equally (0/1 correctness ties often)."""
    best = scores == scores.max(axis=1, keepdims=True)
    return best / best.sum(axis=1, keepdims=True)


def tag_means(labels: np.ndarray, tags: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
    """s_t: the mean label of the queries carrying each tag."""
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for row, ts in zip(labels, tags):
        for t in set(ts):
            sums[t] = sums.get(t, 0) + row
            counts[t] = counts.get(t, 0) + 1
    return {t: sums[t] / counts[t] for t in sums}


def tag_enhance(labels: np.ndarray, tags: Sequence[Sequence[str]], beta: float) -> np.ndarray:
    """s* = beta * s + (1 - beta) * mean_t s_t (Zooter's tag enhancement). beta=1 is a no-op."""
    if not 0.0 <= beta <= 1.0:
        raise ConfigError("beta must be in [0, 1]")
    if len(tags) != len(labels):
        raise ConfigError(f"{len(labels)} label rows but {len(tags)} tag lists")
    if beta == 1.0:
        return labels.copy()
    means = tag_means(labels, tags)
    out = labels.copy()
    for i, ts in enumerate(tags):
        ts = sorted(set(ts))
        if ts:
            out[i] = beta * labels[i] + (1 - beta) * np.mean([means[t] for t in ts], axis=0)
    return out


# -- auto tags: k-means ------------------------------------------------------------------------

def default_k(n: int) -> int:
    """k for auto tags: about one cluster per 40 queries, between 2 and 32. A tag mean needs
    enough queries to be less noisy than one query's label, and Zooter's tags are coarse."""
    return int(min(32, max(2, round(n / 40))))


def kmeans(x: np.ndarray, k: int, *, seed: int = 0, iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(centroids [k, D], assignment [N]) with k-means++ seeding on rows of `x`."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if not 1 <= k <= n:
        raise ConfigError(f"k-means needs 1 <= k <= n, got k={k} for n={n}")
    rng = np.random.default_rng(seed)
    centroids = [x[rng.integers(n)]]
    d2 = ((x - centroids[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        idx = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
        centroids.append(x[idx])
        d2 = np.minimum(d2, ((x - x[idx]) ** 2).sum(1))
    c = np.stack(centroids)
    assign = np.full(n, -1)
    for _ in range(iters):
        new = assign_clusters(x, c)
        if (new == assign).all():
            break
        assign = new
        for j in range(k):
            members = x[assign == j]
            if len(members):
                c[j] = members.mean(0)
    return c, assign


def assign_clusters(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    d = (x ** 2).sum(1)[:, None] - 2 * x @ centroids.T + (centroids ** 2).sum(1)[None, :]
    return d.argmin(1)


def cluster_tags(assign: np.ndarray) -> list[list[str]]:
    return [[f"cluster-{int(a)}"] for a in assign]
