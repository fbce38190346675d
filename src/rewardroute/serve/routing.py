"""Routing a chat request: which text the router reads, which policy ranks the backends.

Routing text (the documented multi-turn rule):
  * system and developer messages are left out: they are usually the same boilerplate for
    every conversation and would drown the question;
  * a conversation with one user turn routes on that turn's text, exactly as the router saw
    single-turn queries in training;
  * later turns route on the last user turn, after up to `context_messages` earlier
    user/assistant messages rendered as "Role: content" and cut to their last `context_chars`
    characters (the backbone keeps the end of a long text, so the last turn always survives);
  * a request with a conversation id routes on the conversation's *first* user turn instead.
    Every request of the conversation then gets the same decision, on any worker and after a
    restart, so a conversation never bounces between models (the sticky store additionally
    remembers a fallback that happened).

Ranking: the policy functions of `zooter.policy` pick one backend; applying them again with
the chosen ones masked out gives the fallback order (next best, then the one after).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..validation import clean_text
from ..zooter.policy import argmax_policy, cost_aware_policy, cost_vector
from .batcher import MicroBatcher
from .config import RouterSettings
from .precision import inference

POLICY_ALIASES = {"argmax": "argmax", "cost_aware": "cost_aware", "cost-aware": "cost_aware", "cost": "cost_aware"}


# -- the text the router reads ------------------------------------------------------------------

def content_text(content: Any) -> str:
    """Text of an OpenAI message content: a string, or a list of parts ({"type": "text", ...})."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content)


def routing_text(messages: Sequence[Mapping[str, Any]], *, context_messages: int = 2, context_chars: int = 300,
                 first_turn: bool = False) -> str:
    """The text to route a conversation on (see the module docstring)."""
    turns = [(m.get("role"), content_text(m.get("content"))) for m in messages
             if m.get("role") in ("user", "assistant", "tool")]
    user_idx = [i for i, (role, _) in enumerate(turns) if role == "user"]
    if not user_idx:  # no user turn: route on whatever was said
        return "\n\n".join(text for _, text in turns) or " ".join(content_text(m.get("content")) for m in messages)
    if first_turn:
        return turns[user_idx[0]][1]
    last = user_idx[-1]
    if last == user_idx[0] or context_messages == 0 or context_chars == 0:
        return turns[last][1]
    context = "\n\n".join(f"{role.capitalize()}: {text}" for role, text in turns[max(0, last - context_messages):last])
    return f"{context[-context_chars:]}\n\nUser: {turns[last][1]}"


# -- policies -----------------------------------------------------------------------------------

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


# -- the router ---------------------------------------------------------------------------------

@dataclass
class LoadedRouter:
    """A saved router split where precision matters: `embed` runs the backbone (the costly
    part, which may run in bfloat16), `head` turns float32 vectors into probabilities."""

    experts: list[str]
    embed: Callable[[list[str]], Any]  # texts -> [N, D] vectors
    head: Callable[[Any], np.ndarray]  # vectors -> [N, K] probabilities over `experts`
    # share of strong calls -> (strong expert, threshold on its probability); 2-model Zooter routers
    strong_threshold: Callable[[float], tuple[str, float]] | None = None
    device_type: str = "cpu"  # where `embed` runs (autocast needs it)

    def probs(self, texts: list[str]) -> np.ndarray:
        return self.head(self.embed(texts))


def load_expert_router(path: Path, device=None) -> LoadedRouter:
    """A saved router: a Zooter router (`router train`, with its kNN mix) or a plain
    ExpertRouter (`save_router`)."""
    import torch

    from ..router.model import read_router_meta

    meta = read_router_meta(path)
    if (meta.get("config", {}).get("meta") or {}).get("kind") == "zooter":
        from ..zooter.route import ZooterRouter

        zr = ZooterRouter.load(path)
        if device is not None:
            zr.router.to(device)
        return LoadedRouter(list(zr.experts), lambda texts: zr.router.embed(texts).float().numpy(),
                            lambda emb: np.asarray(zr.probs_from_embeddings(emb), dtype=float),
                            zr.strong_threshold if zr.meta.get("strong_quantiles") else None,
                            device.type if device is not None else "cpu")
    from ..router import load_router

    router = load_router(path)
    if device is not None:
        router.to(device)
    return LoadedRouter(list(router.experts), lambda texts: router.embed(texts).float(),
                        lambda emb: router.probs_from_embeddings(torch.as_tensor(emb).float()).numpy().astype(float),
                        device_type=device.type if device is not None else "cpu")


class _LRU:
    def __init__(self, size: int):
        self.size = size
        self._d: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, key: str) -> np.ndarray | None:
        v = self._d.get(key)
        if v is not None:
            self._d.move_to_end(key)
        return v

    def put(self, key: str, value: np.ndarray) -> None:
        if self.size <= 0:
            return
        self._d[key] = value
        self._d.move_to_end(key)
        while len(self._d) > self.size:
            self._d.popitem(last=False)


class QueryRouter:
    """p(backend | text) for the backends the router knows, batched and cached.

    `backends` are the router's experts that map to a configured backend (`columns` holds
    their indices in the router's output). Without a router every configured backend gets the
    same probability.
    """

    def __init__(self, settings: RouterSettings, backend_names: Sequence[str], executor: Executor,
                 on_batch: Callable[[int], None] | None = None, loaded: LoadedRouter | None = None):
        self.settings = settings
        self.loaded = loaded
        self.experts = list(loaded.experts) if loaded is not None else list(backend_names)
        mapping = {e: settings.experts.get(e, e) for e in self.experts}
        known = set(backend_names)
        self.columns = [i for i, e in enumerate(self.experts) if mapping[e] in known]
        self.backends = [mapping[self.experts[i]] for i in self.columns]
        if not self.backends:
            raise ConfigError(f"none of the router's experts {self.experts} is a configured backend "
                              f"{list(backend_names)}; map them with router.experts")
        self._cache = _LRU(settings.cache_size)
        self._batcher = (MicroBatcher(self._batch_probs, executor, max_batch=settings.max_batch,
                                      window_s=settings.batch_window_ms / 1000, on_batch=on_batch)
                         if loaded is not None else None)

    def _batch_probs(self, texts: list[str]) -> list[np.ndarray]:
        with inference(self.settings.precision, self.loaded.device_type):
            emb = self.loaded.embed(texts)
        with inference("float32"):
            p = self.loaded.head(emb)
        return [row[self.columns] for row in np.asarray(p, dtype=float)]

    def warm_up(self) -> None:
        """One forward pass at startup, so the first request does not pay for lazy init."""
        if self.loaded is not None:
            self._batch_probs(["Hello, how are you?"])

    async def probs(self, text: str) -> tuple[np.ndarray, bool]:
        """(probabilities over `self.backends`, whether the cache answered)."""
        if self._batcher is None:
            return np.full(len(self.backends), 1.0 / len(self.backends)), True
        text = clean_text(text)
        key = hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=16).hexdigest()
        hit = self._cache.get(key)
        if hit is not None:
            return hit, True
        row = (await self._batcher.submit([text]))[0]
        self._cache.put(key, row)
        return row, False

    def threshold(self, share: float) -> tuple[int, float]:
        """(strong backend's column, threshold) sending about `share` of queries to the strong one."""
        if self.loaded is None or self.loaded.strong_threshold is None or len(self.backends) != 2:
            raise ValueError("a strong-model share needs a router trained over exactly 2 models "
                             "(`router train` on a two-model table), both served as backends")
        strong, t = self.loaded.strong_threshold(share)
        column = self.experts.index(strong)
        if column not in self.columns:
            raise ValueError(f"the strong model '{strong}' is not a configured backend")
        return self.columns.index(column), t

    def costs(self, costs_by_backend: Mapping[str, float]) -> np.ndarray:
        return cost_vector(self.backends, costs_by_backend)

    async def close(self) -> None:
        if self._batcher is not None:
            await self._batcher.close()
