"""Train a Zooter router: scores -> tag-enhanced soft labels -> the shared ExpertRouter with the
KL loss, with the head's L2 penalty and the kNN mix chosen by inner cross-validation on the
quantity routing is for: the mean score of the model it picks.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..backbone import Backbone
from ..console import console
from ..errors import ConfigError
from ..router import ExpertRouter, RouterConfig, fit_router
from ..router.embedding_cache import cached_embed
from ..router.head_fit import fit_linear_head, is_linear_head
from .labels import (Normalizer, ScoreTable, cluster_tags, default_k, hard_labels, kmeans, soft_labels,
                     tag_enhance)
from .route import KIND, KnnMemory, ZooterRouter, unit_rows
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


def select_hyperparameters(data: PreparedData, config: ZooterConfig, backbone: Backbone) -> dict[str, Any]:
    """Inner k-fold CV over (head_l2, knn weight); the objective is the mean raw score of the
    argmax model on the held-out inner fold. Ties go to the larger L2 and the smaller weight."""
    l2s = [config.head_l2] if config.head_l2 is not None else sorted(config.l2_grid)
    weights = [config.knn_weight] if config.knn_weight is not None else sorted(config.knn_weights)
    if len(l2s) == 1 and len(weights) == 1:
        return {"head_l2": l2s[0], "knn_weight": weights[0], "grid": []}
    n = len(data.scores)
    totals = np.zeros((len(l2s), len(weights)))
    for fold in kfold(n, config.inner_folds, config.seed + 1):
        tr = np.setdiff1d(np.arange(n), fold)
        norm = Normalizer.fit(data.scores[tr], config.labels.normalize)
        targets = make_targets(data.scores[tr], [data.tags[i] for i in tr], config, norm)
        memory = KnnMemory(unit_rows(data.embeddings[tr]), norm(data.scores[tr]))
        knn = soft_labels(memory.mean_scores(data.embeddings[fold], config.knn_k), config.labels.temperature)
        for a, l2 in enumerate(l2s):
            router = new_router(data.experts, config, backbone)
            fit_head(router, data.embeddings[tr], targets, l2, config)
            p = router.probs_from_embeddings(torch.from_numpy(data.embeddings[fold]).float()).numpy()
            for b, w in enumerate(weights):
                totals[a, b] += routed_mean((1 - w) * p + w * knn, data.scores[fold]) * len(fold) / n
    best = max(((a, b) for a in range(len(l2s)) for b in range(len(weights))),
               key=lambda ab: (round(totals[ab], 12), l2s[ab[0]], -weights[ab[1]]))
    grid = [{"head_l2": l2, "knn_weight": w, "inner_mean_score": float(totals[a, b])}
            for a, l2 in enumerate(l2s) for b, w in enumerate(weights)]
    return {"head_l2": l2s[best[0]], "knn_weight": weights[best[1]], "grid": grid}


@dataclass
class TrainReport:
    n_train: int
    skipped: int
    experts: list[str]
    head_l2: float
    knn_weight: float
    seconds: float
    selection: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def train_zooter(table: ScoreTable, config: ZooterConfig, *, backbone: Backbone | None = None,
                 embeddings: np.ndarray | None = None, cache_dir: str | Path | None = None,
                 train_data: dict | None = None) -> tuple[ZooterRouter, TrainReport]:
    """Train on `table` (records scored for every model). Pass `embeddings` ([N, D] frozen
    backbone vectors of the queries, in record order) to skip embedding; else they are computed
    through the cache in `cache_dir`."""
    t0 = time.perf_counter()
    backbone = backbone or Backbone.load(config.backbone)
    if embeddings is None:
        probe = new_router(["_"], config, backbone)
        embeddings = cached_embed(probe, [r.query for r in table.records], cache_dir).numpy()
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if len(embeddings) != len(table.records):
        raise ConfigError(f"{len(embeddings)} embeddings for {len(table.records)} records")
    data = prepare(table, config, embeddings)
    chosen = select_hyperparameters(data, config, backbone)
    targets = make_targets(data.scores, data.tags, config, data.normalizer)
    means = table.scores.mean(axis=0)
    costs = table.costs()
    meta = {
        "kind": KIND,
        "zooter": config.model_dump(mode="json"),
        "models": table.models,
        "train_means": {m: float(v) for m, v in zip(table.models, means)},
        "best_single": table.models[int(np.argmax(means))],
        "costs": ({m: float(v) for m, v in zip(table.models, costs.mean(axis=0))} if costs is not None else None),
        "normalizer": {"how": data.normalizer.how, "shift": data.normalizer.shift, "scale": data.normalizer.scale},
        "knn": {"k": config.knn_k, "weight": chosen["knn_weight"], "temperature": config.labels.temperature},
        "head_l2": chosen["head_l2"],
        "n_train": len(table.records),
        "skipped": table.skipped,
        "train_data": train_data,
        "auto_tags_k": None if data.centroids is None else len(data.centroids),
    }
    router = new_router(data.experts, config, backbone, meta)
    fit_head(router, embeddings, targets, chosen["head_l2"], config)
    memory = KnnMemory(unit_rows(embeddings), data.normalizer(data.scores)) if chosen["knn_weight"] > 0 else None
    zr = ZooterRouter(router, memory, data.centroids)
    if len(data.experts) == 2 and meta["best_single"] in data.experts:
        # quantiles of p(strong) on the training queries, so that `route --strong-share` can
        # turn a target share of strong-model calls into a threshold
        p_strong = zr.probs_from_embeddings(embeddings)[:, data.experts.index(meta["best_single"])]
        zr.meta["strong_quantiles"] = np.quantile(p_strong, np.linspace(0, 1, 101)).tolist()
    report = TrainReport(len(table.records), table.skipped, data.experts, chosen["head_l2"], chosen["knn_weight"],
                         time.perf_counter() - t0, chosen["grid"])
    return zr, report
