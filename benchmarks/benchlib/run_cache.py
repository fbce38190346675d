"""Finished benchmark runs kept on disk under a key of everything that produced them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cached_run(folder: Path, key: str, label: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`run()`'s record, from `folder/key.json` when a run with this key finished before. The key
    must cover settings, data and code (see `bench.code_digest`, `bench.prefs_digest`), so a
    result is never reused for anything else."""
    from rewardroute.io import write_json_atomic

    path = Path(folder) / f"{key}.json"
    if path.exists():
        print(f"reusing {label} ({path})", flush=True)
        return json.loads(path.read_text())
    print(f"training {label}", flush=True)
    record = run()
    write_json_atomic(path, record)
    return record
