"""A trained Zooter router: the shared `ExpertRouter` over LLMs, plus what Zooter keeps
beside it (training means for best-single, costs, label settings, an optional kNN memory).

Directory layout (written atomically):
  config.json, router.safetensors   the ExpertRouter (`router.save_router`); Zooter's settings
                                    and training statistics live in `config.meta`, typed by
                                    `zooter_state.ZooterState`
  memory.npz                        kNN memory (normalised training embeddings and scores)
                                    and auto-tag centroids, when used
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
import numpy as np
import torch

from ..data.schemas import Prompt
from ..errors import CheckpointError, ConfigError
from ..io import atomic_dir
from ..router import ExpertRouter, load_router, save_router
from ..router.embedding_cache import embed_on
from ..router.policy import threshold_from_quantiles
from .labels import assign_clusters, soft_labels
from .methods import abstain
from .zooter_state import KIND, ZooterState

MEMORY = "memory.npz"


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class KnnMemory:
    """Training queries (unit vectors) and their normalised scores over the router's experts."""

    embeddings: np.ndarray  # [N, D]
    scores: np.ndarray  # [N, K]

    def mean_scores(self, emb: np.ndarray, k: int) -> np.ndarray:
        """[M, K]: the mean score of each model over the k most similar training queries."""
        sim = unit_rows(np.asarray(emb, dtype=np.float32)) @ self.embeddings.T
        k = min(k, len(self.embeddings))
        idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        return self.scores[idx].mean(axis=1)


class ZooterRouter:
    """p(model | query) = (1 - w) * head + w * kNN over `experts` (the candidate LLMs), then
    the abstain margin: the best single model's probability times exp(margin / T), renormalised."""

    def __init__(self, router: ExpertRouter, memory: KnnMemory | None = None,
                 centroids: np.ndarray | None = None):
        self.router = router
        self.memory = memory
        self.centroids = centroids
        if router.config.meta.get("kind") != KIND:
            raise CheckpointError("this router was not trained by `router train` (no Zooter settings in meta)")
        try:
            self.state = ZooterState.model_validate(router.config.meta)
        except ValueError as e:
            raise CheckpointError(f"this router's Zooter settings are invalid: {e}") from e

    @property
    def experts(self) -> list[str]:
        return self.router.experts

    @property
    def knn_weight(self) -> float:
        return self.state.inference.knn.weight if self.memory is not None else 0.0

    def check_models(self, names: Sequence[str], what: str = "model") -> None:
        unknown = [n for n in names if n not in self.experts]
        if unknown:
            known = ", ".join(self.experts[:20]) + (f", ... ({len(self.experts)} in all)" if len(self.experts) > 20 else "")
            raise ConfigError(f"unknown {what} {unknown}: this router routes among {known}")

    # -- probabilities ----------------------------------------------------------------------
    def embed(self, queries: Sequence[Prompt], cache_dir: str | Path | None = None, runtime=None) -> np.ndarray:
        """Backbone vectors of `queries` (through the cache), on `runtime`'s device and precision."""
        return embed_on(self.router, queries, cache_dir, runtime)

    def probs_from_embeddings(self, emb: np.ndarray) -> np.ndarray:
        p = self.router.probs_from_embeddings(torch.as_tensor(np.asarray(emb, dtype=np.float32))).numpy()
        w, knn = self.knn_weight, self.state.inference.knn
        if w > 0:
            p = (1 - w) * p + w * soft_labels(self.memory.mean_scores(emb, knn.k), knn.temperature)
        ab = self.state.inference.abstain  # absent in routers saved before methods existed
        if ab is not None and ab.margin > 0 and ab.model in self.experts:
            p = abstain(p, self.experts.index(ab.model), ab.margin, ab.temperature)
        return p

    def probs(self, queries: Sequence[Prompt], cache_dir: str | Path | None = None, runtime=None) -> np.ndarray:
        return self.probs_from_embeddings(self.embed(queries, cache_dir, runtime))

    def clusters(self, emb: np.ndarray) -> list[str] | None:
        """Auto-tag of each query (None when the router was trained without auto tags)."""
        if self.centroids is None:
            return None
        return [f"cluster-{int(a)}" for a in assign_clusters(unit_rows(emb), self.centroids)]

    def strong_threshold(self, share: float) -> tuple[str, float]:
        """(strong model, threshold on its probability) sending about `share` of queries like the
        training ones to the strong model (two-model routers only)."""
        q = self.state.inference.strong_quantiles
        if not q:
            raise ConfigError("a strong-model share needs a router over exactly 2 models")
        return self.state.best_single, threshold_from_quantiles(q, share)

    def to(self, device) -> "ZooterRouter":
        self.router.to(device)
        return self

    @property
    def module(self) -> torch.nn.Module:
        """The torch module to place on a device (`runtime.running_on`)."""
        return self.router

    # -- saving ----------------------------------------------------------------------------
    def save(self, out: str | Path) -> Path:
        out = Path(out)
        self.router.config.meta = self.state.model_dump(mode="json")
        with atomic_dir(out) as tmp:
            save_router(self.router, tmp)
            arrays: dict[str, np.ndarray] = {}
            if self.memory is not None:
                arrays.update(embeddings=self.memory.embeddings.astype(np.float32),
                              scores=self.memory.scores.astype(np.float32))
            if self.centroids is not None:
                arrays["centroids"] = self.centroids.astype(np.float32)
            if arrays:
                np.savez(tmp / MEMORY, **arrays)
        return out

    @classmethod
    def load(cls, path: str | Path, backbone=None) -> "ZooterRouter":
        path = Path(path)
        router = load_router(path, backbone)
        memory = centroids = None
        if (path / MEMORY).exists():
            with np.load(path / MEMORY) as data:
                if "embeddings" in data:
                    memory = KnnMemory(data["embeddings"], data["scores"])
                if "centroids" in data:
                    centroids = data["centroids"]
        zr = cls(router, memory, centroids)
        if zr.state.inference.knn.weight > 0 and memory is None:
            raise CheckpointError(f"{path}: {MEMORY} is missing (this router mixes in kNN)")
        return zr
