"""Train a router over LLMs on the shared ExpertRouter: the method (zooter, regression, mf,
knn; see `zooter.methods`), its hyperparameters, the candidate count and the abstain margin are
chosen by inner cross-validation on the quantity routing is for: the mean score of the model it
picks. `zooter` is the paper's: tag-enhanced soft labels, KL loss, mixed with kNN.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..backbone import Backbone
from ..console import console
from ..data.schemas import render_prompt
from ..errors import ConfigError
from ..router import ExpertRouter, RouterConfig, fit_router
from ..router.embedding_cache import embed_on
from ..router.head_fit import fit_linear_head, is_linear_head
from .finetune import finetune_encoder
from .methods import FALLBACK_MARGIN, FINE_TUNED, decisions, linear_map, methods_to_try, param_grid
from .labels import (Normalizer, ScoreTable, cluster_tags, default_k, hard_labels, kmeans, soft_labels,
                     tag_enhance)
from .route import KnnMemory, ZooterRouter, unit_rows
from .zooter_state import AbstainSettings, InferenceSettings, KnnSettings, NormalizerState, ZooterState
from .zooter_config import ZooterConfig
from ..training.seed import seeded_init


@contextlib.contextmanager
def quiet_console(enabled: bool = True) -> Iterator[None]:
    """Silence progress bars and epoch lines (many small fits in cross-validation)."""
    was = console.quiet
    console.quiet = enabled or was
    try:
        yield
    finally:
        console.quiet = was


def kfold(n: int, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint index arrays covering range(n), from a seeded permutation."""
    if n < k:
        raise ConfigError(f"{k}-fold cross-validation needs at least {k} queries, got {n}")
    return np.array_split(np.random.default_rng(seed).permutation(n), k)


@dataclass
class PreparedData:
    """What training needs, computed once: embeddings, candidate models, labels' inputs."""

    table: ScoreTable
    embeddings: np.ndarray  # [N, D]
    experts: list[str]  # candidate models, the router's outputs
    scores: np.ndarray  # [N, K] raw scores over `experts`
    tags: list[list[str]]
    normalizer: Normalizer
    centroids: np.ndarray | None = None


def candidate_models(table: ScoreTable, config: ZooterConfig) -> list[str]:
    means = table.scores.mean(axis=0)
    order = np.argsort(-means, kind="stable")
    if config.candidates is not None:
        order = order[: config.candidates]
    return [table.models[i] for i in sorted(order)]


def prepare(table: ScoreTable, config: ZooterConfig, embeddings: np.ndarray) -> PreparedData:
    if len(table.records) < 2:
        raise ConfigError(f"need at least 2 scored queries to train a router, got {len(table.records)}")
    experts = candidate_models(table, config)
    cols = [table.models.index(m) for m in experts]
    scores = table.scores[:, cols]
    lab = config.labels
    centroids = None
    if lab.tags == "field":
        tags = table.tags
    elif lab.tags == "auto":
        k = min(lab.auto_k or default_k(len(scores)), len(scores))
        centroids, assign = kmeans(unit_rows(embeddings), k, seed=config.seed)
        tags = cluster_tags(assign)
    else:
        tags = [[] for _ in table.records]
    return PreparedData(table, embeddings, experts, scores, tags, Normalizer.fit(scores, lab.normalize), centroids)


def make_targets(scores: np.ndarray, tags: Sequence[Sequence[str]], config: ZooterConfig,
                 normalizer: Normalizer) -> np.ndarray:
    lab = config.labels
    s = normalizer(scores)
    base = hard_labels(s) if lab.hard else soft_labels(s, lab.temperature)
    return tag_enhance(base, tags, lab.beta)


def new_router(experts: list[str], config: ZooterConfig, backbone: Backbone, meta: dict | None = None) -> ExpertRouter:
    cfg = RouterConfig(experts=experts, backbone=config.backbone, finetune=False, hidden=config.hidden,
                       dropout=config.dropout, meta=meta or {})
    seeded_init(config.seed, "router")  # the head starts the same for a seed, fold after fold
    return ExpertRouter.build(cfg, backbone)


def fit_head(router: ExpertRouter, emb: np.ndarray, targets: np.ndarray, l2: float, config: ZooterConfig):
    if is_linear_head(router.head):  # convex: solved exactly in one full-batch solve
        return fit_linear_head(router.head.out, torch.from_numpy(emb).float(), torch.from_numpy(targets).float(), l2)
    args = config.training.model_copy(update={"head_l2": l2, "seed": config.seed, "resume": False})
    texts = [""] * len(emb)  # the frozen path trains on the given embeddings only
    with quiet_console():
        return fit_router(router, texts, torch.from_numpy(targets).float(), args,
                          train_embeddings=torch.from_numpy(emb).float())


def routed_mean(probs: np.ndarray, scores: np.ndarray) -> float:
    return float(scores[np.arange(len(scores)), probs.argmax(axis=1)].mean())


def fold_probs(method: str, grid: list[dict[str, Any]], emb_tr: np.ndarray, scores_tr: np.ndarray,
               tags_tr: Sequence[Sequence[str]], emb_te: np.ndarray, config: ZooterConfig,
               backbone: Backbone, experts: list[str]) -> list[np.ndarray]:
    """p(model | query) on `emb_te` for each hyperparameter setting of `grid`, fitted on the
    training part only (its own normaliser)."""
    norm = Normalizer.fit(scores_tr, config.labels.normalize)
    y = norm(scores_tr)
    t = config.labels.temperature
    if method in ("regression", "mf"):
        out = []
        for params in grid:
            w, b = linear_map(method, params, emb_tr, y)
            out.append(soft_labels(emb_te @ w.T + b, t))
        return out
    memory = KnnMemory(unit_rows(emb_tr), y)
    if method == "knn":
        return [soft_labels(memory.mean_scores(emb_te, int(p["k"])), t) for p in grid]
    # zooter: one head fit per L2, reused across kNN weights
    knn = soft_labels(memory.mean_scores(emb_te, config.knn_k), t)
    targets = make_targets(scores_tr, tags_tr, config, norm)
    heads: dict[float, np.ndarray] = {}
    out = []
    for params in grid:
        l2 = params["head_l2"]
        if l2 not in heads:
            router = new_router(experts, config, backbone)
            fit_head(router, emb_tr, targets, l2, config)
            heads[l2] = router.probs_from_embeddings(torch.from_numpy(emb_te).float()).numpy()
        w = params["knn_weight"]
        out.append((1 - w) * heads[l2] + w * knn)
    return out


def search_space(config: ZooterConfig, n_models: int) -> tuple[list[int | None], list[float]]:
    """Candidate counts (None: every model) and abstain margins the inner CV tries."""
    if config.candidates is not None:
        cands: list[int | None] = [None if config.candidates >= n_models else config.candidates]
    else:
        cands = [None, *sorted({c for c in config.candidates_grid if c < n_models})]
    margins = [config.abstain_margin] if config.abstain_margin is not None else [0.0, *sorted(config.margin_grid)]
    return cands, margins


def select_hyperparameters(data: PreparedData, config: ZooterConfig, backbone: Backbone) -> dict[str, Any]:
    """Inner k-fold CV on the training queries over every method `config.method` allows, its
    hyperparameters, the candidate count and the abstain margin. The objective is the mean raw
    score of the argmax model on the held-out inner folds. Ties keep the first setting tried
    (methods in METHODS order; within zooter the larger L2 and the smaller kNN weight; all
    candidates and margin 0 first).

    Guard (`config.guard_se`): the winner's out-of-fold gain over the best single model (of
    each inner training part) is averaged over the training queries; unless it exceeds
    `guard_se` standard errors, the router falls back to the best single model: the abstain
    margin becomes the whole normalised score range (FALLBACK_MARGIN), so argmax always picks
    it while p(model | query) keeps its ranking for threshold and cost-aware policies.
    The winner of a large search is optimistic, and on small or noisy tables a router that
    cannot show a gain on its own training data should not route."""
    methods = methods_to_try(config.method)
    grids = {m: param_grid(m, config) for m in methods}
    if "zooter" in grids:  # ties to the larger L2 and the smaller kNN weight
        grids["zooter"].sort(key=lambda p: (-p["head_l2"], p["knn_weight"]))
    cands, margins = search_space(config, len(data.experts))
    keys = [(m, i, c, g) for m in methods for i in range(len(grids[m])) for c in cands for g in margins]
    if len(keys) == 1:
        m, _, c, g = keys[0]
        return {"method": m, "params": grids[m][0], "candidates": c, "margin": g, "guard": None, "grid": []}
    n = len(data.scores)
    chosen = {key: np.zeros(n) for key in keys}  # out-of-fold score of the model each setting picks
    single = np.zeros(n)  # out-of-fold score of the inner training part's best single model
    for fold in kfold(n, config.inner_folds, config.seed + 1):
        tr = np.setdiff1d(np.arange(n), fold)
        order = np.argsort(-data.scores[tr].mean(axis=0), kind="stable")
        test_scores = data.scores[fold]
        single[fold] = test_scores[:, order[0]]
        for m in methods:
            probs = fold_probs(m, grids[m], data.embeddings[tr], data.scores[tr], [data.tags[i] for i in tr],
                               data.embeddings[fold], config, backbone, data.experts)
            for i, p in enumerate(probs):
                for (c, g), choice in decisions(p, order, margins, cands, config.labels.temperature).items():
                    chosen[(m, i, c, g)][fold] = test_scores[np.arange(len(fold)), choice]
    totals = {key: float(v.mean()) for key, v in chosen.items()}
    best = keys[0]
    for key in keys[1:]:
        if round(totals[key], 12) > round(totals[best], 12):
            best = key
    m, i, c, g = best
    gain = chosen[best] - single
    se = float(gain.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    guard = {"gain": float(gain.mean()), "se": se, "fell_back": False}
    if config.guard_se is not None and gain.mean() <= config.guard_se * se:
        g, guard["fell_back"] = FALLBACK_MARGIN, True
    grid = [{"method": k[0], **grids[k[0]][k[1]], "candidates": k[2], "margin": k[3], "inner_mean_score": v}
            for k, v in totals.items()]
    return {"method": m, "params": grids[m][i], "candidates": c, "margin": g, "inner_mean_score": totals[best],
            "guard": guard, "grid": grid}


def best_rows(grid: list[dict[str, Any]], ignore: Sequence[str] = ()) -> dict[tuple, dict[str, Any]]:
    """The best inner-CV row for each setting of the fields not in `ignore` (first on ties)."""
    skip = {"inner_mean_score", *ignore}
    out: dict[tuple, dict[str, Any]] = {}
    for row in grid:
        key = tuple((k, v) for k, v in row.items() if k not in skip)
        if key not in out or row["inner_mean_score"] > out[key]["inner_mean_score"]:
            out[key] = row
    return out


def best_per_method(grid: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The best inner-CV row of each method (what `auto` compared)."""
    out: dict[str, dict[str, Any]] = {}
    for row in best_rows(grid, ["candidates", "margin"]).values():
        if row["method"] not in out or row["inner_mean_score"] > out[row["method"]]["inner_mean_score"]:
            out[row["method"]] = row
    return out


@dataclass
class TrainReport:
    n_train: int
    skipped: int
    experts: list[str]
    method: str
    params: dict[str, Any]
    candidates: int | None
    abstain_margin: float
    head_l2: float  # zooter's head L2 (0 for the other methods)
    knn_weight: float  # weight of the kNN estimate (1 for knn, 0 for regression and mf)
    seconds: float
    inner_cv: dict[str, dict[str, Any]] = field(default_factory=dict)  # best inner-CV row per method
    guard: dict[str, Any] | None = None  # the winner's out-of-fold gain over best single, and the decision
    selection: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def train_zooter(table: ScoreTable, config: ZooterConfig, *, backbone: Backbone | None = None,
                 embeddings: np.ndarray | None = None, cache_dir: str | Path | None = None,
                 train_data: dict | None = None, runtime=None) -> tuple[ZooterRouter, TrainReport]:
    """Train on `table` (records scored for every model) with `config.method` (`auto`: the
    method that wins the inner cross-validation). Pass `embeddings` ([N, D] frozen backbone
    vectors of the queries, in record order) to skip embedding; else they are computed through
    the cache in `cache_dir`. `train_data` is what the router records about its training file
    (name and hash, `fingerprint.data_identity`). `runtime` (a `RuntimeConfig`) is where the
    queries are embedded; the head is fitted on the CPU either way (it is small)."""
    t0 = time.perf_counter()
    backbone = backbone or Backbone.load(config.backbone)
    if embeddings is None:
        probe = new_router(["_"], config, backbone)
        embeddings = embed_on(probe, [r.query for r in table.records], cache_dir, runtime)
        probe.to("cpu")  # the backbone is shared with the router trained below
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if len(embeddings) != len(table.records):
        raise ConfigError(f"{len(embeddings)} embeddings for {len(table.records)} records")
    fine_tune = config.method == FINE_TUNED
    # zooter-ft searches as zooter without kNN: a memory of frozen vectors would not match the
    # fine-tuned encoder's
    search = config.model_copy(update={"knn_weight": 0.0}) if fine_tune else config
    # the search runs over every model; the chosen candidate count then fixes the experts
    chosen = select_hyperparameters(prepare(table, config.model_copy(update={"candidates": None}), embeddings),
                                    search, backbone)
    method, params = (FINE_TUNED if fine_tune else chosen["method"]), chosen["params"]
    data = prepare(table, config.model_copy(update={"candidates": chosen["candidates"]}), embeddings)
    y = data.normalizer(data.scores)
    temperature = config.labels.temperature
    head_l2 = float(params.get("head_l2", 0.0))
    knn_weight = {"zooter": params.get("knn_weight", 0.0), "knn": 1.0}.get(method, 0.0)
    knn_k = int(params.get("k", config.knn_k))
    means = table.scores.mean(axis=0)
    costs = table.costs()
    best_single = table.models[int(np.argmax(means))]
    state = ZooterState(
        method=method, params=params, training=config, models=table.models,
        inference=InferenceSettings(
            # the label temperature: neighbour scores are softened on the head's target scale
            knn=KnnSettings(k=knn_k, weight=knn_weight, temperature=temperature),
            abstain=AbstainSettings(model=best_single, margin=float(chosen["margin"]), temperature=temperature)),
        train_means={m: float(v) for m, v in zip(table.models, means)},
        best_single=best_single,
        costs=({m: float(v) for m, v in zip(table.models, costs.mean(axis=0))} if costs is not None else None),
        normalizer=NormalizerState(how=data.normalizer.how, shift=data.normalizer.shift, scale=data.normalizer.scale),
        guard=chosen["guard"], head_l2=head_l2, n_train=len(table.records), skipped=table.skipped,
        train_data=train_data, auto_tags_k=None if data.centroids is None else len(data.centroids))
    # zooter-ft changes its encoder's weights: a copy, never the caller's shared backbone
    router = new_router(data.experts, config, copy.deepcopy(backbone) if fine_tune else backbone,
                        state.model_dump(mode="json"))
    if method in ("zooter", FINE_TUNED):
        targets = make_targets(data.scores, data.tags, config, data.normalizer)
        fit_head(router, embeddings, targets, head_l2, config)
        if fine_tune:
            params = {**params, "fine_tuning": finetune_encoder(router, [render_prompt(r.query) for r in table.records],
                                                                targets, data.scores, head_l2, config)}
            state.params = params
            router.config.meta = state.model_dump(mode="json")
            embeddings = router.embed([r.query for r in table.records]).numpy()  # the encoder it now has
    elif method in ("regression", "mf"):
        # logits = predicted normalised score / T, so softmax is the score-based distribution
        w, b = linear_map(method, params, embeddings, y)
        with torch.no_grad():
            router.head.out.weight.copy_(torch.from_numpy(w / temperature).float())
            router.head.out.bias.copy_(torch.from_numpy(b / temperature).float())
    else:  # knn: the head is unused (zero, uniform), all weight on the memory
        with torch.no_grad():
            router.head.out.weight.zero_()
            router.head.out.bias.zero_()
    memory = KnnMemory(unit_rows(embeddings), y) if knn_weight > 0 else None
    zr = ZooterRouter(router, memory, data.centroids)
    if len(data.experts) == 2 and best_single in data.experts:
        # quantiles of p(strong) on the training queries, so that `route --strong-share` can
        # turn a target share of strong-model calls into a threshold
        p_strong = zr.probs_from_embeddings(embeddings)[:, data.experts.index(best_single)]
        zr.state.inference.strong_quantiles = np.quantile(p_strong, np.linspace(0, 1, 101)).tolist()
    report = TrainReport(len(table.records), table.skipped, data.experts, method, params, chosen["candidates"],
                         float(chosen["margin"]), head_l2, float(knn_weight), time.perf_counter() - t0,
                         best_per_method(chosen["grid"]), chosen["guard"],
                         # one row per method setting (its best candidate count and margin)
                         list(best_rows(chosen["grid"], ["candidates", "margin"]).values()))
    return zr, report
