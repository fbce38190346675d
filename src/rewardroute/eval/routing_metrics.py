"""Metrics of LLM routing, on a test score matrix S [N queries, K models].

Quality
  * mean score: the mean over queries of S[q, chosen(q)].
  * random: the expected mean score of a uniformly random choice (the mean of S).
  * oracle: the mean over queries of max_m S[q, m] (needs every model's answer).
  * gap recovered: (router - best_single) / (oracle - best_single); best_single is the model
    with the best mean on the *training* data. 0 = no better than best_single, 1 = oracle.

Zooter (Lu et al., NAACL 2024), over tasks = record tags (or subsets)
  * MTR, mean task rank: on each task, a method's rank among the K candidate models by mean
    score, 1 + the number of models strictly better on that task; then the mean over tasks.
    (Zooter ranks the rows of its result table; ranking against the candidate models only
    keeps a method's MTR independent of which other methods are listed.)
  * uplift: the share of tasks on which a method's mean score is above best_single's.

RouteLLM (Ong et al., 2024), for a curve of quality against the share of calls to the strong
model x in [0, 1] (or, for more than two models, the cost normalised between the weak and the
strong model):
  * PGR(x) = (quality(x) - weak) / (strong - weak), the performance gap recovered;
  * APGR = the integral of PGR over x in [0, 1] (trapezoids on the swept points);
  * CPT(p) = the smallest x whose PGR reaches p (CPT(50%), CPT(80%));
  * AUC = the integral of quality over x in [0, 1].

RouterBench (Hu et al., 2024)
  * AIQ, average improvement in quality: the area under the router's non-decreasing convex
    hull in the cost-quality plane over [c_min, c_max] (the cheapest and the dearest model),
    divided by c_max - c_min. Mixing two operating points at random reaches any point of the
    segment between them, so the hull is what a router can deliver at each budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def chosen_scores(scores: np.ndarray, choice: np.ndarray) -> np.ndarray:
    return np.asarray(scores)[np.arange(len(scores)), np.asarray(choice, dtype=int)]


def mean_score(scores: np.ndarray, choice: np.ndarray) -> float:
    return float(chosen_scores(scores, choice).mean())


def oracle_score(scores: np.ndarray) -> float:
    return float(np.asarray(scores).max(axis=1).mean())


def random_score(scores: np.ndarray) -> float:
    return float(np.asarray(scores).mean())


def gap_recovered(value: float, best_single: float, oracle: float) -> float | None:
    gap = oracle - best_single
    return None if gap <= 1e-12 else float((value - best_single) / gap)


# -- per task (Zooter) -------------------------------------------------------------------------

def task_means(per_query: np.ndarray, tags: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean of a per-query quantity over the queries of each tag (a query may carry several)."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for v, ts in zip(per_query, tags):
        for t in set(ts):
            sums[t] = sums.get(t, 0.0) + float(v)
            counts[t] = counts.get(t, 0) + 1
    return {t: sums[t] / counts[t] for t in sorted(sums)}


def mean_task_rank(methods: Mapping[str, Mapping[str, float]], models: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """MTR of each method: mean over tasks of 1 + #models strictly better on the task."""
    out = {}
    for name, tm in methods.items():
        ranks = [1 + sum(1 for m in models.values() if m[t] > v + 1e-12) for t, v in tm.items()]
        out[name] = float(np.mean(ranks)) if ranks else float("nan")
    return out


def uplift(methods: Mapping[str, Mapping[str, float]], reference: Mapping[str, float]) -> dict[str, float]:
    """Share of tasks where a method beats the reference (best_single) task mean."""
    out = {}
    for name, tm in methods.items():
        wins = [v > reference[t] + 1e-12 for t, v in tm.items()]
        out[name] = float(np.mean(wins)) if wins else float("nan")
    return out


# -- cost-quality curves (RouteLLM) ------------------------------------------------------------

def _curve(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Points sorted by x, one per x (the best quality), clipped to [0, 1] and extended flat."""
    best: dict[float, float] = {}
    for a, b in zip(x, y):
        a = float(min(max(a, 0.0), 1.0))
        best[a] = max(best.get(a, -np.inf), float(b))
    xs = np.array(sorted(best))
    ys = np.array([best[a] for a in xs])
    if xs[0] > 1e-9:  # (a mean of equal costs can miss the weak model's own cost by rounding)
        raise ValueError("the curve needs a point at x = 0 (all calls to the weak model)")
    xs[0] = 0.0
    if xs[-1] < 1:
        xs, ys = np.append(xs, 1.0), np.append(ys, ys[-1])
    return xs, ys


def _trapz(xs: np.ndarray, ys: np.ndarray) -> float:
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2))


def auc(x: Sequence[float], y: Sequence[float]) -> float:
    xs, ys = _curve(x, y)
    return _trapz(xs, ys)


def pgr(quality: float, weak: float, strong: float) -> float | None:
    return None if abs(strong - weak) <= 1e-12 else (quality - weak) / (strong - weak)


def apgr(x: Sequence[float], y: Sequence[float], weak: float, strong: float) -> float | None:
    xs, ys = _curve(x, y)
    if abs(strong - weak) <= 1e-12:
        return None
    return _trapz(xs, (ys - weak) / (strong - weak))


def cpt(x: Sequence[float], y: Sequence[float], weak: float, strong: float, target: float) -> float | None:
    """The smallest x at which the interpolated PGR reaches `target` (None if never)."""
    xs, ys = _curve(x, y)
    if abs(strong - weak) <= 1e-12:
        return None
    p = (ys - weak) / (strong - weak)
    if p[0] >= target:
        return float(xs[0])
    for i in range(1, len(xs)):
        if p[i] >= target:  # linear interpolation inside the segment that crosses
            return float(xs[i - 1] + (target - p[i - 1]) / (p[i] - p[i - 1]) * (xs[i] - xs[i - 1]))
    return None


def threshold_sweep(p_strong: np.ndarray, scores: np.ndarray, strong: int, weak: int) -> tuple[np.ndarray, np.ndarray]:
    """Quality at every share of strong calls: the k queries with the highest p(strong) go to
    the strong model, k = 0..N. Returns (share, quality) with N + 1 points."""
    order = np.argsort(-np.asarray(p_strong), kind="stable")
    s = np.asarray(scores)
    gain = (s[order, strong] - s[order, weak])
    quality = s[:, weak].mean() + np.concatenate([[0.0], np.cumsum(gain)]) / len(s)
    share = np.arange(len(s) + 1) / len(s)
    return share, quality


# -- RouterBench -------------------------------------------------------------------------------

def nondecreasing_hull(costs: Sequence[float], quality: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The upper convex hull of the points, cut where it stops rising."""
    best: dict[float, float] = {}
    for c, q in zip(costs, quality):
        best[float(c)] = max(best.get(float(c), -np.inf), float(q))
    pts = sorted(best.items())
    hull: list[tuple[float, float]] = []
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:  # hull[-1] is under the chord
                hull.pop()
            else:
                break
        hull.append(p)
    xs, ys = [], []
    for x, y in hull:
        if ys and y <= ys[-1]:
            break
        xs.append(x)
        ys.append(y)
    return np.array(xs), np.array(ys)


def aiq(costs: Sequence[float], quality: Sequence[float], c_min: float, c_max: float) -> float | None:
    """RouterBench's AIQ of a router's (cost, quality) points over [c_min, c_max]."""
    if c_max - c_min <= 1e-15:
        return None
    hx, hy = nondecreasing_hull(costs, quality)
    grid = np.linspace(c_min, c_max, 2001)
    # below the router's cheapest point it cannot operate: quality counts as that point's only
    # if it is at c_min (a cost-aware sweep with lambda = inf is); otherwise 0 there
    vals = np.interp(grid, hx, hy, left=np.nan, right=hy[-1])
    vals = np.where(np.isnan(vals), 0.0, vals)
    return _trapz(grid, vals) / (c_max - c_min)
