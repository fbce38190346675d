"""Streaming, all-or-nothing writes of several JSONL files (the split files of a build)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from ..io import atomic_path


@contextlib.contextmanager
def jsonl_files(folder: Path, names: Iterable[str]) -> Iterator[dict[str, TextIO]]:
    """An open file per name for `folder/<name>.jsonl`, to append lines to as they come.

    Each is written to a temporary file beside its target; only when the block ends without an
    error are they closed and renamed over their targets, one after the other. A crash while
    writing leaves the old files (or none), never a half-written one.
    """
    with contextlib.ExitStack() as stack:
        files: dict[str, TextIO] = {}
        for name in names:
            tmp = stack.enter_context(atomic_path(Path(folder) / f"{name}.jsonl"))
            files[name] = stack.enter_context(open(tmp, "w", encoding="utf-8"))  # closed before its rename
        yield files
