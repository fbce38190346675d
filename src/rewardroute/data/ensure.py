"""Use a built data folder, building it from the public sources first when it is missing."""

from __future__ import annotations

from pathlib import Path

from ..console import console


def ensure_built(out: str | Path, source: str | Path | None = None) -> Path:
    """`out` with `prefs/` and `routing/` in it; runs `data build` when `prefs/train.jsonl` is absent."""
    out = Path(out)
    if (out / "prefs" / "train.jsonl").exists():
        return out
    from .build import build_dataset, default_source_dir

    src = Path(source) if source else default_source_dir()
    console.print(f"building data from {src} into {out} ...")
    build_dataset(src, out, warn=lambda m: console.print(f"[yellow]warning:[/] {m}"))
    return out
