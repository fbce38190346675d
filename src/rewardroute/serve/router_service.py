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

Ranking: `router.policy` (the one place routing decisions are made) picks one backend;
applying it again with the chosen ones masked out gives the fallback order.
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
from ..router.policy import cost_vector
from .batcher import MicroBatcher
from .config import RouterSettings
from .precision import inference



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


def load_expert_router(path: Path, device=None, *, int8: bool = False) -> LoadedRouter:
    """Any saved router (`router.interface`: a Zooter router with its kNN mix, or a domain
    router), split for serving into its costly embedding and its cheap head. `int8` quantises
    the encoder once, here (CPU only)."""
    from ..router.interface import load_any_router
    from ..runtime import check_precision, quantize_int8

    router = load_any_router(path)
    if device is not None:
        router.to(device)
    if int8:
        import torch

        check_precision("int8", device if device is not None else torch.device("cpu"))
        quantize_int8(router.module.backbone)
    return LoadedRouter(list(router.experts), lambda texts: np.asarray(router.embed(texts), dtype=np.float32),
                        lambda emb: np.asarray(router.probs_from_embeddings(emb), dtype=float),
                        router.strong_threshold, device.type if device is not None else "cpu")


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
        try:
            strong, t = self.loaded.strong_threshold(share)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        column = self.experts.index(strong)
        if column not in self.columns:
            raise ValueError(f"the strong model '{strong}' is not a configured backend")
        return self.columns.index(column), t

    def costs(self, costs_by_backend: Mapping[str, float]) -> np.ndarray:
        return cost_vector(self.backends, costs_by_backend)

    async def close(self) -> None:
        if self._batcher is not None:
            await self._batcher.close()
