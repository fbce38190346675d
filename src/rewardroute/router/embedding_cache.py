"""A disk cache of frozen-backbone embeddings, keyed by backbone settings and text hash.

With a frozen backbone only the head learns, so the texts need embedding once: cross-
validation folds, ablations and re-runs then reuse the vectors. One `.npz` file per backbone
setting holds the text hashes and the vectors; it is rewritten atomically when texts are added.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.schemas import Prompt, render_prompt
from ..io import atomic_path


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def cache_key(router) -> str:
    """Identifies the vectors a router's backbone produces: its settings (name, pooling, length)
    and, for a backbone on disk, the hash of its files (another copy under the same name, or a
    re-download, never reuses vectors it did not make)."""
    cfg = router.config.backbone
    # training-only settings do not change a frozen backbone's vectors (nor old cache files' keys)
    settings = cfg.model_dump_json(exclude={"attention_dropout", "freeze_layers"})
    return hashlib.sha256((settings + weights_identity(cfg.name_or_path, cfg.gguf_file)).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=16)
def weights_identity(name_or_path: str, gguf_file: str | None) -> str:
    """sha256 of a local backbone's files (computed once per process), or its hub id."""
    from ..backbone import BackboneConfig, resolve
    from ..fingerprint import tree_sha256

    path, gguf = resolve(BackboneConfig(name_or_path=name_or_path, gguf_file=gguf_file))
    folder = Path(path)
    if not folder.is_dir():
        return f"hub:{path}"
    return tree_sha256(folder, gguf) if gguf else tree_sha256(folder, "*.safetensors") + tree_sha256(folder, "*.json")


def cached_embed(router, texts: Sequence[Prompt], cache_dir: str | Path | None, *,
                 batch_size: int = 64, write: bool = True) -> torch.Tensor:
    """`router.embed(texts)`, reading and (with `write`) filling the cache in `cache_dir` (None:
    no cache). Only valid for a frozen backbone: a fine-tuned one changes its vectors."""
    from ..runtime import is_int8

    flat = [render_prompt(t) for t in texts]
    if cache_dir is None or router.config.finetune or is_int8(router):  # the cache holds fp32 vectors only
        return router.embed(flat, batch_size=batch_size)
    file = Path(cache_dir) / f"emb-{cache_key(router)}.npz"
    store: dict[str, np.ndarray] = {}
    if file.exists():
        with np.load(file) as data:
            store = dict(zip(data["hashes"].tolist(), data["vectors"]))
    hashes = [text_hash(t) for t in flat]
    todo = sorted({h: i for i, h in enumerate(hashes) if h not in store}.values())
    if todo:
        if len(todo) > 256 and write:
            from ..console import console
            console.print(f"embedding {len(todo)} texts (cached in {file.parent} for next time)", highlight=False)
        vecs = router.embed([flat[i] for i in todo], batch_size=batch_size).numpy()
        store.update({hashes[i]: v for i, v in zip(todo, vecs)})
    if todo and write:
        with atomic_path(file) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, hashes=np.array(list(store)), vectors=np.stack(list(store.values())))
    return torch.from_numpy(np.stack([store[h] for h in hashes]).astype(np.float32))


def embed_on(router, texts: Sequence[Prompt], cache_dir: str | Path | None, runtime=None) -> np.ndarray:
    """`cached_embed` with the router placed on `runtime`'s device and precision (a
    `RuntimeConfig`; None: as it is). The cache holds fp32 vectors only: a bf16/fp16 run neither
    reads nor writes it, so vectors of two precisions never mix.

    Under a multi-process launch each process embeds a contiguous share of `texts` and every
    process gets all the vectors, in order; the cache is then read, never written (the processes
    would race on its file)."""
    if runtime is None:
        return cached_embed(router, texts, cache_dir).numpy()
    from ..runtime import gather_objects, process_layout, running_on

    with running_on(router, runtime):
        cache = cache_dir if runtime.precision == "fp32" else None
        rank, world = process_layout()
        if world == 1:
            return cached_embed(router, texts, cache).numpy()
        lo, hi = rank * len(texts) // world, (rank + 1) * len(texts) // world
        mine = cached_embed(router, list(texts)[lo:hi], cache, write=False).numpy()
        return np.concatenate(gather_objects(mine), axis=0)
