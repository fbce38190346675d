"""The router methods behind `router train --method`, on frozen query embeddings.

Each method turns training embeddings X [N, D] and min-max-normalised scores Y [N, K] into
p(model | query), so every routing policy (argmax, cost-aware, strong-share) works unchanged:

* `zooter`: the paper's method, a linear head trained with KL to tag-enhanced soft labels,
  mixed with kNN (train.py fits it; its grid is head L2 x kNN weight).
* `regression`: ridge regression of every model's score; p = softmax(predicted score / T).
* `mf`: matrix factorisation in the manner of RouteLLM's MF router, generalised to N models:
  score(q, m) = <v_m, P x_q> + b_m with model embeddings v_m [r] and a query projection P
  [r, D], fitted on every model's score at once. With squared loss and an L2 penalty on the
  map the minimiser is reduced-rank ridge regression (the ridge fit projected on its top r
  output directions), solved in closed form: models that behave alike share directions.
* `knn`: the mean normalised score of the k most similar training queries, softmax(./T).

Regression and mf collapse to one linear map (W [K, D], b [K]) on the raw embedding, stored as
the router's ordinary linear head with logits (W x + b) / T: nothing new to save or load.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import ConfigError
from .labels import soft_labels

METHODS = ("zooter", "regression", "mf", "knn")  # the order also breaks ties in `auto`
FINE_TUNED = "zooter-ft"  # zooter, then the encoder's top layers fine-tuned (zooter.finetune)
CHOICES = (*METHODS, "auto", FINE_TUNED)
# the abstain margin of a router that should not route: the whole min-max-normalised score range
FALLBACK_MARGIN = 1.0


def ridge_map(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(W [K, D], b [K]) minimising ||x W^T + b - y||^2 + lam * n * s2 * ||W||^2, where s2 is
    the mean squared norm of the centred rows (so `lam` means the same whatever the encoder's
    vector scale)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mx, my = x.mean(axis=0), y.mean(axis=0)
    xc = x - mx
    s2 = float((xc ** 2).sum(axis=1).mean()) or 1.0
    # the dual form when there are fewer rows than dimensions: an [N, N] solve instead of [D, D]
    n, d = xc.shape
    if n < d:
        alpha = np.linalg.solve(xc @ xc.T + lam * s2 * np.eye(n), y - my)
        w = (xc.T @ alpha).T
    else:
        w = np.linalg.solve(xc.T @ xc + lam * s2 * np.eye(d), xc.T @ (y - my)).T
    return w, my - w @ mx


def reduced_rank_map(x: np.ndarray, y: np.ndarray, lam: float, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """The mf fit: ridge, then the fitted scores projected on their top `rank` directions over
    models. W = V V^T W_ridge factorises as (model embeddings V [K, r]) x (projection V^T W_ridge)."""
    w, b = ridge_map(x, y, lam)
    fitted = (np.asarray(x, dtype=np.float64) - np.asarray(x, dtype=np.float64).mean(axis=0)) @ w.T
    _, _, vt = np.linalg.svd(fitted, full_matrices=False)
    v = vt[: max(1, min(rank, len(vt)))].T  # [K, r]
    mean_y = np.asarray(y, dtype=np.float64).mean(axis=0)
    w_r = v @ (v.T @ w)
    return w_r, mean_y - w_r @ np.asarray(x, dtype=np.float64).mean(axis=0)


def linear_map(method: str, params: dict[str, Any], x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if method == "regression":
        return ridge_map(x, y, float(params["ridge"]))
    if method == "mf":
        return reduced_rank_map(x, y, float(params["ridge"]), int(params["rank"]))
    raise ConfigError(f"method '{method}' is not a linear score model (regression, mf)")


def param_grid(method: str, config) -> list[dict[str, Any]]:
    """Hyperparameters inner cross-validation tries for `method` (values given in the config
    are fixed instead of searched)."""
    def axis(value, grid):
        return [value] if value is not None else sorted(grid)

    if method == "zooter":
        return [{"head_l2": a, "knn_weight": b}
                for a, b in itertools.product(axis(config.head_l2, config.l2_grid),
                                              axis(config.knn_weight, config.knn_weights))]
    if method == "regression":
        return [{"ridge": r} for r in axis(config.ridge, config.ridge_grid)]
    if method == "mf":
        return [{"ridge": r, "rank": k} for r, k in itertools.product(axis(config.ridge, config.ridge_grid),
                                                                       axis(config.rank, config.rank_grid))]
    if method == "knn":
        return [{"k": k} for k in axis(None, config.knn_ks)]
    raise ConfigError(f"unknown method '{method}': choose one of {', '.join(CHOICES)}")


def methods_to_try(method: str) -> tuple[str, ...]:
    if method == "auto":
        return METHODS
    if method == FINE_TUNED:  # its search is zooter's, on the frozen embeddings
        return ("zooter",)
    if method not in METHODS:
        raise ConfigError(f"unknown method '{method}': choose one of {', '.join(CHOICES)}")
    return (method,)


def abstain(probs: np.ndarray, column: int, margin: float, temperature: float) -> np.ndarray:
    """Favour the best single model: its probability times exp(margin / T), renormalised (in
    log space: no overflow at large margins). For p = softmax(score / T) this adds `margin` to
    its predicted score, so argmax leaves the best single model only when another model is
    predicted better by more than `margin`."""
    if margin <= 0:
        return probs
    z = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-300, None))
    z[:, column] += margin / temperature
    return soft_labels(z, 1.0)


def decisions(probs: np.ndarray, order: np.ndarray, margins: Iterable[float], candidates: Iterable[int | None],
              temperature: float) -> dict[tuple[int | None, float], np.ndarray]:
    """Argmax choices for every (candidates, margin): `order` ranks the models by training
    mean (best first); only the first `candidates` may be picked; `margin` favours order[0]."""
    logp = np.log(np.clip(probs, 1e-300, None))
    out = {}
    for c in candidates:
        masked = logp.copy()
        if c is not None:
            masked[:, order[c:]] = -np.inf
        for m in margins:
            z = masked.copy()
            z[:, order[0]] += m / temperature
            out[(c, m)] = z.argmax(axis=1)
    return out
