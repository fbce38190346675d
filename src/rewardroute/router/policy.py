"""Routing policies: from p(model | query) to one model per query, and the fallback order.

The one place routing decisions are made: `rewardroute router route`, the serving proxy and
the routing evaluation all call these.

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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

POLICY_ALIASES = {"argmax": "argmax", "cost_aware": "cost_aware", "cost-aware": "cost_aware", "cost": "cost_aware"}


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


def share_threshold(strong_share: float, quantile: Callable[[float], float]) -> float:
    """The threshold t such that `p(strong) >= t` holds for about `strong_share` of queries like
    the calibration ones: the (1 - share) quantile of p(strong), from `quantile(level)`. Share 1
    always picks the strong model, share 0 never does."""
    if not 0.0 <= strong_share <= 1.0:
        raise ConfigError("the strong-model share must be in [0, 1]")
    if strong_share >= 1.0:
        return -np.inf
    if strong_share <= 0.0:
        return np.inf
    return float(quantile(1.0 - strong_share))


def calibrate_threshold(p_strong: np.ndarray, strong_share: float) -> float:
    """`share_threshold` from calibration samples of p(strong) (their order statistic)."""
    p = np.sort(np.asarray(p_strong, dtype=float))
    return share_threshold(strong_share, lambda level: p[min(int(round(len(p) * level)), len(p) - 1)])


def threshold_from_quantiles(quantiles: Sequence[float], strong_share: float) -> float:
    """`share_threshold` from stored quantiles of p(strong) at evenly spaced levels (what a
    trained router keeps of its training queries)."""
    q = np.asarray(quantiles, dtype=float)
    return share_threshold(strong_share, lambda level: np.interp(level, np.linspace(0, 1, len(q)), q))


def threshold_policy(p_strong: np.ndarray, threshold: float, strong: int, weak: int) -> np.ndarray:
    return np.where(np.asarray(p_strong) >= threshold, strong, weak)


def lambda_grid(n: int = 40) -> list[float]:
    """0, a geometric range covering every trade-off, and inf (always the cheapest)."""
    return [0.0, *np.geomspace(1e-3, 10.0, n - 2).tolist(), float("inf")]


# -- named policies and the fallback order -----------------------------------------------------

@dataclass(frozen=True)
class PolicySpec:
    name: str  # argmax | cost_aware | threshold
    lam: float = 0.0
    share: float | None = None  # threshold: the share of queries like the training ones sent to the strong model

    @property
    def label(self) -> str:
        if self.name == "threshold":
            return f"threshold:{self.share:g}"
        return f"cost_aware:{self.lam:g}" if self.name == "cost_aware" else self.name

    @classmethod
    def from_routellm_name(cls, model: str, router_name: str) -> "PolicySpec | None":
        """RouteLLM's `router-<name>-<threshold>` names, where the number is the share of
        strong-model calls in [0, 1] (a meaning a platform team can budget with); None when
        `model` is not such a name. Raises ValueError for a malformed share."""
        prefix = f"router-{router_name}-"
        if not model.startswith(prefix):
            return None
        text = model[len(prefix):]
        try:
            share = float(text)
        except ValueError:
            raise ValueError(f"'{text}' in '{model}' is not a share of strong-model calls in [0, 1]") from None
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"the strong-model share in '{model}' must be in [0, 1]")
        return cls("threshold", share=share)

    @classmethod
    def parse(cls, text: str | None, default: "PolicySpec") -> "PolicySpec":
        """'' -> default; 'argmax'; 'cost_aware' (lam from config); 'cost_aware:0.3'.
        Raises ValueError with a message meant for the client."""
        if not text:
            return default
        name, _, lam_text = text.partition(":")
        policy = POLICY_ALIASES.get(name.strip().lower())
        if policy is None:
            raise ValueError(f"unknown routing policy '{name}'; use argmax or cost_aware[:lambda]")
        if policy == "argmax":
            if lam_text:
                raise ValueError("the argmax policy takes no lambda")
            return cls("argmax")
        if not lam_text:
            return cls("cost_aware", default.lam)
        try:
            lam = float(lam_text)
        except ValueError:
            raise ValueError(f"lambda must be a number, got '{lam_text}'") from None
        if not lam >= 0:  # also rejects nan
            raise ValueError("lambda must be >= 0")
        return cls("cost_aware", lam)


def rank(probs: np.ndarray, policy: PolicySpec, costs: np.ndarray | None = None,
         threshold: tuple[int, float] | None = None) -> list[int]:
    """Every column index, best first under the policy: the policy's pick, then its pick among
    the rest, and so on (the fallback order). `threshold` is (strong column, threshold on its
    probability) for the threshold policy of two-model routers."""
    p = np.asarray(probs, dtype=float).reshape(1, -1).copy()
    if policy.name == "threshold":
        if threshold is None or p.shape[1] != 2:
            raise ValueError("a strong-model share needs a router over exactly 2 backends")
        strong, t = threshold
        return [strong, 1 - strong] if p[0, strong] >= t else [1 - strong, strong]
    if policy.name == "cost_aware" and np.isinf(policy.lam):  # always the cheapest: by price
        return [int(i) for i in np.argsort(np.asarray(costs, dtype=float), kind="stable")]
    order: list[int] = []
    for _ in range(p.shape[1]):
        if policy.name == "cost_aware":
            i = int(cost_aware_policy(p, costs, policy.lam)[0])
        else:
            i = int(argmax_policy(p)[0])
        order.append(i)
        p[0, i] = -np.inf
    return order
