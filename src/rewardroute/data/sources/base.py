"""What every source builder shares: where its files are, where to get them, and small helpers.

A builder is a dataclass. Its fields are the pairing parameters (caps, gaps, seed), so the
parameters a build used can be written to SUMMARY.json with `builder.params()`.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from ...errors import DataError, SourceMissingError
from ..readers import iter_raw, open_text
from ..schemas import PreferencePair, RoutingRecord


@dataclasses.dataclass
class Builder:
    """One public source turned into standard records."""

    name: ClassVar[str]                   # short name shown in summaries, e.g. "summeval"
    origin_url: ClassVar[str]             # the public repository the files come from
    required_files: ClassVar[tuple[str, ...]]  # paths relative to the source dir
    upstream: ClassVar[str] = ""          # where in that repository (or how the file was derived)
    rules: ClassVar[str] = ""             # one markdown paragraph for BUILD.md: how records are formed

    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def notes(self) -> dict[str, Any]:
        """Facts found by the last `build` that a reader of SUMMARY.json needs (e.g. which runs)."""
        return dict(getattr(self, "_notes", {}))

    def require(self, source_dir: Path) -> list[Path]:
        """The required files, or SourceMissingError naming the missing one and where to get it."""
        source_dir = Path(source_dir)
        paths = [source_dir / rel for rel in self.required_files]
        missing = [p for p in paths if not p.exists()]
        if missing:
            where = f" ({self.upstream})" if self.upstream else ""
            raise SourceMissingError(
                f"source '{self.name}': missing file {missing[0]}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                + f". Get it from {self.origin_url}{where}, or point --source / $REWARDROUTE_DATA "
                  "at a folder that has it.")
        return paths


@dataclasses.dataclass
class PairBuilder(Builder):
    """Builds preference pairs for one reward domain."""

    domain: ClassVar[str]

    def build(self, source_dir: Path) -> Iterable[PreferencePair]:
        """The pairs: a list, or an iterator for sources too large to hold (it must check its
        files before it returns, so a missing source fails at once). Built twice per build:
        the same pairs in the same order for the same sources and seed."""
        raise NotImplementedError


@dataclasses.dataclass
class RoutingBuilder(Builder):
    """Builds one routing table (query x model scores)."""

    def build(self, source_dir: Path) -> list[RoutingRecord]:
        raise NotImplementedError


# ---------------------------------------------------------------- small shared helpers

def load_jsonl_numbered(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a JSONL(.gz) file, for errors that name file:line; a malformed line raises DataError."""
    for lineno, row in iter_raw(path):
        if isinstance(row, DataError):
            raise row
        yield lineno, row


def load_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL(.gz) file; a malformed line raises DataError with file:line."""
    for _lineno, row in load_jsonl_numbered(path):
        yield row


def load_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file as plain strings (no dotted-column unflattening: model names contain dots)."""
    with open_text(path) as f:
        return list(csv.DictReader(f))


def short_hash(*texts: str, n: int = 8) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:n]


def make_pair(domain: str, source: str, key: str, prompt: Any, chosen: str, rejected: str,
              winner: str | None = None, loser: str | None = None, group: str | None = None) -> PreferencePair:
    """A pair with the stable id `<source>:<key>` or `<source>:<key>:<winner>><loser>`; `group` is
    its split group key (None: the prompt)."""
    pid = f"{source}:{key}" if winner is None else f"{source}:{key}:{winner}>{loser}"
    return PreferencePair(id=pid, prompt=prompt, chosen=chosen, rejected=rejected, domain=domain,
                          source=source, group=group)
