"""Use a built data folder, building it from the public sources first when it is missing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..console import console
from ..fingerprint import StaleOutputError


def ensure_built(out: str | Path, source: str | Path | None = None, domains: Sequence[str] | None = None) -> Path:
    """`out` with `prefs/` and `routing/` in it; runs `data build` (of `domains`, default the five)
    when `prefs/train.jsonl` is absent.

    A folder built by other builder code (another split rule, other pairs) is refused, never
    used silently: results measured on it would not be the ones the code describes. So is one
    that lacks a requested domain."""
    out = Path(out)
    from .build import build_dataset, builder_identity, default_source_dir

    if (out / "prefs" / "train.jsonl").exists():
        check_current(out, builder_identity(), domains)
        return out
    src = Path(source) if source else default_source_dir()
    console.print(f"building data from {src} into {out} ...")
    build_dataset(src, out, domains=list(domains) if domains else None,
                  warn=lambda m: console.print(f"[yellow]warning:[/] {m}"))
    return out


def check_current(out: Path, current: str, domains: Sequence[str] | None = None) -> None:
    """Raise StaleOutputError unless `out/SUMMARY.json` names `current` as its builder (and holds
    every one of `domains`)."""
    summary_path = out / "SUMMARY.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise StaleOutputError(f"{summary_path}: cannot read the build summary ({e}); rebuild with "
                               f"`rewardroute data build --out {out} --overwrite`") from e
    built_by = summary.get("builder")
    if built_by != current:
        rule = summary.get("split", {}).get("rule", "unknown")
        raise StaleOutputError(
            f"{out} was built by other data-builder code (builder {built_by or 'not recorded'}, now {current}; "
            f"its split rule: {rule}). Results on it would not match this version. Rebuild it with "
            f"`rewardroute data build --out {out} --overwrite`, or build into a new folder.")
    missing = sorted(set(domains or ()) - set(summary.get("domains", ())))
    if missing:
        raise StaleOutputError(f"{out} has no {', '.join(missing)} pairs (it holds {summary.get('domains')}); "
                               f"build them with `rewardroute data build --domains {','.join(missing)} --out DIR`")
