"""`router eval`: the router against every baseline on a test set, as one JSON object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..eval import routing_metrics as rm
from .baselines import knn_choice, mlp_choice, rmr_choice, select_knn_k
from .labels import ScoreTable
from ..router.policy import cost_aware_policy, cost_vector, lambda_grid
from .route import ZooterRouter


@dataclass
class CostCurve:
    """Operating points of the cost-aware policy (or the 2-model threshold)."""

    kind: str  # "threshold" (x = share of strong calls) or "lambda" (x = normalised cost)
    x: np.ndarray  # in [0, 1] between the weak and the strong model
    cost: np.ndarray  # mean cost per query (share of strong calls without prices)
    quality: np.ndarray
    lambdas: list[float] | None
    weak: str
    strong: str


def _cols(models: list[str], names: list[str]) -> list[int]:
    return [models.index(n) for n in names]


def model_costs(zr: ZooterRouter, test: ScoreTable, override: Mapping[str, float] | None) -> dict[str, float] | None:
    """Per-model cost per query: given, else from the router's training data, else the test
    records' `costs` (mean per model)."""
    if override:
        return dict(override)
    if zr.state.costs:
        return dict(zr.state.costs)
    c = test.costs()
    return None if c is None else {m: float(v) for m, v in zip(test.models, c.mean(axis=0))}


def cost_curve(zr: ZooterRouter, probs: np.ndarray, test: ScoreTable, costs: Mapping[str, float] | None,
               n_lambdas: int = 40) -> CostCurve | None:
    experts = zr.experts
    scores = test.scores[:, _cols(test.models, experts)]
    strong = zr.state.best_single
    if strong not in experts:
        return None
    s = experts.index(strong)
    if len(experts) == 2:
        w = 1 - s
        share, quality = rm.threshold_sweep(probs[:, s], scores, s, w)
        cost = share
        if costs:
            cost = costs[experts[w]] + share * (costs[strong] - costs[experts[w]])
        return CostCurve("threshold", share, np.asarray(cost), quality, None, experts[w], strong)
    if not costs:
        return None
    c = cost_vector(experts, costs)
    weak = int(np.argmin(c))
    if c[s] <= c[weak]:
        return None  # the best model is also the cheapest: there is no trade-off to sweep
    per_query = test.costs()
    per_query = per_query[:, _cols(test.models, experts)] if per_query is not None else None
    lams = lambda_grid(n_lambdas)
    xs, cs, qs = [], [], []
    for lam in lams:
        choice = cost_aware_policy(probs, c, lam)
        spent = rm.mean_score(per_query, choice) if per_query is not None else float(c[choice].mean())
        cs.append(spent)
        xs.append((spent - c[weak]) / (c[s] - c[weak]))
        qs.append(rm.mean_score(scores, choice))
    return CostCurve("lambda", np.array(xs), np.array(cs), np.array(qs), lams, experts[weak], strong)


def evaluate(zr: ZooterRouter, test: ScoreTable, test_emb: np.ndarray, *, train: ScoreTable | None = None,
             train_emb: np.ndarray | None = None, reward_scores: np.ndarray | None = None,
             costs: Mapping[str, float] | None = None, seed: int = 0) -> tuple[dict[str, Any], CostCurve | None]:
    """The `router eval --json` object and the cost curve. `test.models` must be the router's
    training models; `reward_scores` ([N, K] in the same order) enables rmr."""
    models = test.models
    experts = zr.experts
    S = test.scores
    probs = zr.probs_from_embeddings(test_emb)
    choice_router = np.array(_cols(models, experts))[probs.argmax(axis=1)]
    best = zr.state.best_single
    choices: dict[str, np.ndarray] = {"router": choice_router, "best_single": np.full(len(S), models.index(best))}
    extra: dict[str, Any] = {"best_single_model": best, "skipped": test.skipped}

    if train is not None and train_emb is not None:
        if train.models != models:
            raise ConfigError("the training and test data must score the same models")
        k = select_knn_k(train_emb, train.scores, seed=seed)
        choices["knn"] = knn_choice(train_emb, train.scores, test_emb, k)
        choices["mlp"] = mlp_choice(train_emb, train.scores, test_emb, seed=seed)
        extra["knn_k"] = k
    if reward_scores is not None:
        choices["rmr"] = rmr_choice(reward_scores)
        extra["rmr_cost_multiplier"] = len(models)

    mean_score: dict[str, float | None] = {name: rm.mean_score(S, c) for name, c in choices.items()}
    mean_score["oracle"] = rm.oracle_score(S)
    mean_score["random"] = rm.random_score(S)
    for name in ("knn", "mlp", "rmr"):
        mean_score.setdefault(name, None)
    bs, orc = mean_score["best_single"], mean_score["oracle"]

    tags = test.tags
    if not any(tags):  # no tags in the data: the router's own k-means clusters, if it has them
        clusters = zr.clusters(test_emb)
        tags = [[c] for c in clusters] if clusters else tags
    mtr = upl = None
    if any(tags):
        per_method = {name: rm.task_means(rm.chosen_scores(S, c), tags) for name, c in choices.items()}
        per_method["oracle"] = rm.task_means(S.max(axis=1), tags)
        per_method["random"] = rm.task_means(S.mean(axis=1), tags)
        per_model = {m: rm.task_means(S[:, j], tags) for j, m in enumerate(models)}
        mtr = rm.mean_task_rank(per_method, per_model)
        upl = rm.uplift(per_method, per_method["best_single"])

    costs = model_costs(zr, test, costs)
    curve = cost_curve(zr, probs, test, costs)
    cost_metrics: dict[str, Any] = {"apgr": None, "cpt50": None, "cpt80": None, "auc": None, "aiq": None}
    if curve is not None:
        cols = _cols(models, [curve.weak, curve.strong])
        weak_q, strong_q = S[:, cols[0]].mean(), S[:, cols[1]].mean()
        cost_metrics = {
            "apgr": rm.apgr(curve.x, curve.quality, weak_q, strong_q),
            "cpt50": rm.cpt(curve.x, curve.quality, weak_q, strong_q, 0.5),
            "cpt80": rm.cpt(curve.x, curve.quality, weak_q, strong_q, 0.8),
            "auc": rm.auc(curve.x, curve.quality),
        }
        model_cost = ([costs[m] for m in experts] if costs else [0.0 if m == curve.weak else 1.0 for m in experts])
        cost_metrics["aiq"] = rm.aiq(curve.cost, curve.quality, min(model_cost), max(model_cost))
        extra["cost_curve"] = {"kind": curve.kind, "weak": curve.weak, "strong": curve.strong,
                               "points": [{"x": float(a), "cost": float(b), "quality": float(q)}
                                          for a, b, q in zip(curve.x, curve.cost, curve.quality)],
                               "models": {m: {"cost": float(c), "quality": float(S[:, models.index(m)].mean())}
                                          for m, c in zip(experts, model_cost)}}

    share = np.bincount(probs.argmax(axis=1), minlength=len(experts)) / len(S)
    result: dict[str, Any] = {
        "n": int(len(S)),
        "models": models,
        "mean_score": mean_score,
        "gap_recovered": rm.gap_recovered(mean_score["router"], bs, orc),
        "gap_recovered_by_method": {k: (rm.gap_recovered(v, bs, orc) if v is not None else None)
                                    for k, v in mean_score.items()},
        "mtr": mtr,
        "uplift": upl,
        **cost_metrics,
        "routing_share": {m: float(v) for m, v in zip(experts, share)},
        **extra,
    }
    return result, curve
