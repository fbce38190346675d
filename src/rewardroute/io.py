"""Atomic writes. Long jobs write to a temporary path and rename, so a crash never
leaves a half-written file where a finished one is expected."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file path beside `path`; rename it over `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; finished files follow the umask
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; swap it in for `path` on success.

    An existing `path` is replaced only once the new one is complete. Files written inside
    follow the umask, whatever wrote them (safetensors creates its files 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        _follow_umask(tmp)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _follow_umask(folder: Path) -> None:
    """Give regular files under `folder` that lack the umask's permissions (0600 from a writer
    that uses mkstemp-like modes) the mode a plain open() would have given them."""
    mode = 0o666 & ~_umask()
    for f in folder.rglob("*"):
        if f.is_file() and not f.is_symlink() and (f.stat().st_mode & 0o777) != mode:
            os.chmod(f, mode)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl_atomic(path: str | Path, rows: Iterable[Any]) -> int:
    """Write rows (dicts or pydantic models) as JSONL; returns the count."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(to_json_line(row))
            n += 1
    return n


def to_json_line(row: Any) -> str:
    if hasattr(row, "model_dump"):
        row = row.model_dump(exclude_none=True)
    return json.dumps(row, ensure_ascii=False) + "\n"


class CheckpointedJsonl:
    """An append-only JSONL output for resumable jobs.

    Finished rows are appended to `<out>.partial` and flushed one by one; `finish()`
    renames the partial file to `out`. A re-run reads the partial file (or the finished
    file) back and carries on from there, so no finished row is computed twice.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self._fh = None

    def existing(self) -> list[dict]:
        """Rows already done, from the partial file, else from a finished output."""
        src = self.partial if self.partial.exists() else self.path if self.path.exists() else None
        if src is None:
            return []
        rows = []
        with open(src, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a torn last line from a crash: recompute it
        return rows

    def resume(self) -> int:
        """Carry on appending after the rows already done, without reading them into memory:
        a finished output becomes the partial file again, a torn last line (a crash mid-write) is
        cut off. Returns how many rows are done."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.partial.exists() and self.path.exists():
            os.replace(self.path, self.partial)
        done, good_end = 0, 0
        if self.partial.exists():
            with open(self.partial, "rb") as f:
                for line in f:
                    if not line.endswith(b"\n"):
                        break
                    if line.strip():
                        try:
                            json.loads(line)
                        except json.JSONDecodeError:
                            break
                        done += 1
                    good_end = f.tell()
            with open(self.partial, "r+b") as f:
                f.truncate(good_end)
        self._fh = open(self.partial, "a", encoding="utf-8")
        return done

    def open(self, rows: list[dict] | None = None) -> "CheckpointedJsonl":
        """Start the partial file with `rows` (the ones kept from a previous run)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.partial) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for row in rows or []:
                f.write(to_json_line(row))
        self._fh = open(self.partial, "a", encoding="utf-8")
        return self

    def append(self, row: Any) -> None:
        assert self._fh is not None, "call open() first"
        self._fh.write(to_json_line(row))
        self._fh.flush()

    def finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        os.replace(self.partial, self.path)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
