"""Routing policies: from p(model | query) to one model per query.

* `argmax`: the most likely model (Zooter).
* `cost_aware`: argmax over models of p(model | query) - lambda * cost(model) / max cost.
  Costs are scaled by the most expensive model so that lambda reads in probability points:
  lambda = 0.1 gives up 0.1 of probability for the whole price range. lambda = 0 is argmax;
  a large lambda always picks the cheapest model.
* `threshold` (two models, as in RouteLLM): the strong model when p(strong | query) >= t.
  `calibrate_threshold` picks t so that a target share of calibration queries goes to the
  strong model, which gives the threshold a meaning a platform team can budget with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import ConfigError


def argmax_policy(probs: np.ndarray) -> np.ndarray:
    return np.asarray(probs).argmax(axis=1)


def cost_vector(models: Sequence[str], costs: Mapping[str, float]) -> np.ndarray:
    missing = [m for m in models if m not in costs]
    if missing:
        raise ConfigError(f"no cost for models {missing}")
    c = np.array([float(costs[m]) for m in models])
    if (c < 0).any():
        raise ConfigError("costs must be non-negative")
    return c


def cost_aware_policy(probs: np.ndarray, costs: np.ndarray, lam: float) -> np.ndarray:
    """argmax_m p(m | q) - lam * cost(m) / max(cost); `lam = inf` picks the cheapest model."""
    costs = np.asarray(costs, dtype=float)
    scaled = costs / costs.max() if costs.max() > 0 else costs
    if np.isinf(lam):
        return np.full(len(probs), int(np.argmin(scaled)))
    # a tiny cost tie-break so that lam > 0 prefers the cheaper of two equally likely models
    return (np.asarray(probs) - lam * scaled - 1e-12 * scaled).argmax(axis=1)


def calibrate_threshold(p_strong: np.ndarray, strong_share: float) -> float:
    """The threshold t such that `p >= t` holds for about `strong_share` of the calibration
    queries (the (1 - share) quantile of p(strong))."""
    if not 0.0 <= strong_share <= 1.0:
        raise ConfigError("the strong-model share must be in [0, 1]")
    p = np.sort(np.asarray(p_strong, dtype=float))
    if strong_share >= 1.0:
        return -np.inf
    if strong_share <= 0.0:
        return np.inf
    k = int(round(len(p) * (1 - strong_share)))
    return float(p[min(k, len(p) - 1)])


def threshold_policy(p_strong: np.ndarray, threshold: float, strong: int, weak: int) -> np.ndarray:
    return np.where(np.asarray(p_strong) >= threshold, strong, weak)


def lambda_grid(n: int = 40) -> list[float]:
    """0, a geometric range covering every trade-off, and inf (always the cheapest)."""
    return [0.0, *np.geomspace(1e-3, 10.0, n - 2).tolist(), float("inf")]
