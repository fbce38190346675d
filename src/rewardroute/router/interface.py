"""The one face every saved router shows to its users (the proxy, `load_router`, the CLI), and
the registry from a router's kind to the class that loads it.

A router maps queries to p(expert | query). Its costly part, embedding the text, is separate
from the cheap head (`probs_from_embeddings`), so callers can batch, cache or change the
precision of the first alone. Vectors and probabilities are NumPy arrays.

Adding a kind of router is one class with these methods plus one line in `ROUTER_KINDS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ..data.schemas import Prompt
from ..errors import CheckpointError, ConfigError
from .model import ExpertRouter, load_router, read_router_meta


class Router(Protocol):
    experts: list[str]

    def embed(self, queries: Sequence[Prompt]) -> np.ndarray: ...  # [N, D]
    def probs_from_embeddings(self, emb: np.ndarray) -> np.ndarray: ...  # [N, K] over `experts`
    def probs(self, queries: Sequence[Prompt]) -> np.ndarray: ...
    def strong_threshold(self, share: float) -> tuple[str, float]: ...  # two-model routers
    def to(self, device: Any) -> Any: ...
    @property
    def module(self) -> torch.nn.Module: ...  # the torch module to place on a device or quantise


class DomainRouter:
    """A plain `ExpertRouter` (domains, or any experts trained with `fit_router`) behind the face."""

    def __init__(self, router: ExpertRouter):
        self.router = router

    @classmethod
    def load(cls, path: str | Path) -> "DomainRouter":
        return cls(load_router(path))

    @property
    def experts(self) -> list[str]:
        return list(self.router.experts)

    def embed(self, queries: Sequence[Prompt]) -> np.ndarray:
        return self.router.embed(queries).float().numpy()

    def probs_from_embeddings(self, emb: np.ndarray) -> np.ndarray:
        return self.router.probs_from_embeddings(torch.as_tensor(np.asarray(emb, dtype=np.float32))).numpy()

    def probs(self, queries: Sequence[Prompt]) -> np.ndarray:
        return self.probs_from_embeddings(self.embed(queries))

    def strong_threshold(self, share: float) -> tuple[str, float]:
        raise ConfigError("a strong-model share needs a router trained by `router train` over exactly 2 models")

    def to(self, device: Any) -> "DomainRouter":
        self.router.to(device)
        return self

    @property
    def module(self) -> torch.nn.Module:
        return self.router


# kind (the `kind` a router records in its config meta; none: "domain") -> "module:Class" with `load(path)`
ROUTER_KINDS: dict[str, str] = {
    "domain": "rewardroute.router.interface:DomainRouter",
    "zooter": "rewardroute.zooter.route:ZooterRouter",
}


def router_kind(path: str | Path) -> str:
    return (read_router_meta(path).get("config", {}).get("meta") or {}).get("kind") or "domain"


def load_any_router(path: str | Path) -> Router:
    """The saved router in `path`, whatever its kind, behind the one face."""
    kind = router_kind(path)
    target = ROUTER_KINDS.get(kind)
    if target is None:
        raise CheckpointError(f"{path}: router kind '{kind}' is unknown; known: {sorted(ROUTER_KINDS)}")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls).load(path)
