"""`router collect`: ask every backend for a response to every query, concurrently.

Input: routing records (`id`, `query`, optional `tags`); scores, if present, are carried.
Output: the same records with `responses`, `costs` (per call, from the backend's price and
the reported token usage) and `errors` (backends that failed for good, and why).

Resumable and re-runnable: records are appended to `<out>.partial` as they complete; a
re-run (after a crash, or later to retry failures) keeps every response already collected
for an unchanged query and asks only for what is missing, i.e. the (query, backend) cells
without a response. The final file is written atomically, in input order.

Streaming: queries are asked a window of records at a time, and rows of earlier runs are
not held in memory, only where each lies (id, file and byte offset): memory grows by one
small index entry per record, never by the answers. The output is left as it is until the
new one replaces it.

What a response depends on besides its query (the backend set: names, urls, models, prices,
extra request fields; and the generation settings) is the output's fingerprint, kept in
`<out>.fingerprint.json`: a re-run with a different one stops with an error naming what
differs, or starts afresh with `overwrite`. Queries are checked record by record (a changed
query is asked again), so the query file may grow between runs.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Iterable, Iterator, Sequence, Sized
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ..backends.client import BackendError, BackendPool, RetryPolicy
from ..backends.config import BackendConfig
from ..console import console, progress
from ..data.readers import iter_records
from ..data.schemas import Prompt, RoutingRecord
from ..fingerprint import guard_output, settings_value
from ..io import CheckpointedJsonl, to_json_line, write_jsonl_atomic

# Records asked at once. It bounds what a run holds (records, coroutines, answers not yet
# written) whatever the size of the input; each backend's max_concurrency still applies. Not
# a CollectConfig field: it changes how a run goes, not what it collects (the fingerprint).
WINDOW = 256

Where = tuple[Path, int]  # a row's file and the byte offset its line starts at
T = TypeVar("T")


class CollectConfig(BaseModel):
    """Generation settings sent with every request."""

    model_config = ConfigDict(extra="forbid")
    max_tokens: int = Field(default=512, ge=1)
    temperature: float | None = Field(default=None, ge=0)  # None: the backend's default
    system_prompt: str | None = None
    seed: int | None = None


def messages_for(query: Prompt, system_prompt: str | None) -> list[dict[str, str]]:
    msgs = [{"role": "user", "content": query}] if isinstance(query, str) else [m.model_dump() for m in query]
    if system_prompt and not any(m["role"] == "system" for m in msgs):
        msgs.insert(0, {"role": "system", "content": system_prompt})
    return msgs


# -- rows of earlier runs, found by offset -------------------------------------------------------

def _parse(line: bytes) -> RoutingRecord | None:
    try:
        return RoutingRecord.model_validate(json.loads(line))
    except ValueError:
        return None  # an unreadable old row is simply asked for again


def _index_file(path: Path, where: dict[str, Where]) -> int:
    """Note in `where` the offset of each readable row of `path` (a later row of an id replaces
    an earlier one); returns the end of its last complete line (a crash may tear the next)."""
    end = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            rec = _parse(line)
            if rec is not None:
                where[rec.id] = (path, end)
            end += len(line)
    return end


def _index(out: CheckpointedJsonl) -> dict[str, Where]:
    """Where the last readable row of each id lies: in the finished file, then in the partial one
    (so a retried record's row replaces its first attempt). The partial file loses a torn last
    line here, which would otherwise swallow the first row appended after it."""
    where: dict[str, Where] = {}
    if out.path.exists():
        _index_file(out.path, where)
    if out.partial.exists():
        os.truncate(out.partial, _index_file(out.partial, where))
    return where


def _read_row(where: Where | None) -> RoutingRecord | None:
    """The row at `where`, read back from disk when its record needs it."""
    if where is None:
        return None
    path, offset = where
    with open(path, "rb") as f:
        f.seek(offset)
        return _parse(f.readline())


def _append(partial: BinaryIO, row: RoutingRecord) -> int:
    """Append `row`, flushed so that a crash keeps it; returns the offset it starts at."""
    offset = partial.tell()
    partial.write(to_json_line(row).encode("utf-8"))
    partial.flush()
    return offset


# -- what to ask, what to write ------------------------------------------------------------------

def _merge(base: RoutingRecord, prev: RoutingRecord | None, backends: Sequence[str]) -> tuple[RoutingRecord, list[str]]:
    """The record to fill and the backends still missing for it."""
    if prev is None or prev.query != base.query:
        return base.model_copy(update={"responses": {}, "costs": {}, "errors": {}}), list(backends)
    responses = dict(prev.responses or {})
    costs = dict(prev.costs or {})
    rec = base.model_copy(update={"responses": responses, "costs": costs, "errors": {}})
    return rec, [b for b in backends if b not in responses]


def _output_row(base: RoutingRecord, row: RoutingRecord | None) -> RoutingRecord:
    """What OUT holds for input record `base`: its fields as the input has them, the answers of
    its collected `row` (none if the input changed under the run: the next run asks it)."""
    if row is None or row.query != base.query:
        return base.model_copy(update={"responses": {}, "costs": None, "errors": None})
    return base.model_copy(update={"responses": row.responses, "costs": row.costs or None,
                                   "errors": row.errors or None})


def _write_output(out: CheckpointedJsonl, records: Iterable[RoutingRecord], n: int,
                  previous: dict[str, Where], fresh: dict[int, int]) -> int:
    """Write OUT atomically: the first `n` records, in input order, each once, its row read back
    from the partial file (asked this run) or from where an earlier run left it. Returns how
    many (query, backend) cells failed."""
    failed = 0

    def rows() -> Iterator[RoutingRecord]:
        nonlocal failed
        for i, base in enumerate(islice(records, n)):
            where = (out.partial, fresh[i]) if i in fresh else previous.get(base.id)
            row = _output_row(base, _read_row(where))
            failed += len(row.errors or {})
            yield row

    write_jsonl_atomic(out.path, rows())
    return failed


# -- running ---------------------------------------------------------------------------------------

def _windows(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last one shorter), taken only as each is needed."""
    it = iter(items)
    return iter(lambda: list(islice(it, size)), [])


async def _all(jobs: Iterable[Awaitable[Any]]) -> None:
    """Await `jobs` together. If one fails the others are cancelled, and awaited, before the error
    goes up: none of them writes after the run has stopped."""
    tasks = [asyncio.ensure_future(j) for j in jobs]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# Backend fields that change what is stored (timeouts, retries and keys do not).
IDENTITY_FIELDS = ("name", "base_url", "model", "cost_per_1k_tokens", "extra_body")


def collect_fingerprint(backends: Sequence[BackendConfig], config: CollectConfig) -> dict[str, Any]:
    return {"backends": sorted((settings_value(b.model_dump(include=set(IDENTITY_FIELDS))) for b in backends),
                               key=lambda b: b["name"]),
            "generation": settings_value(config)}


async def collect_async(backends: Sequence[BackendConfig], records: Iterable[RoutingRecord], out_path: str | Path,
                        config: CollectConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                        retry: RetryPolicy | None = None, overwrite: bool = False,
                        window: int = WINDOW) -> dict[str, Any]:
    """Collect into `out_path`; returns counts. `records` is walked twice (to ask, then to write
    OUT in order): a list, or an iterable that reads its source afresh on each walk."""
    if iter(records) is records:
        raise TypeError("records are walked twice: pass a list or a re-iterable, not an iterator")
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    out = CheckpointedJsonl(out_path)
    guard_output(out.path, collect_fingerprint(backends, config), also=[out.partial], overwrite=overwrite)
    previous = _index(out)
    names = [b.name for b in backends]
    stats = {b: {"ok": 0, "failed": 0} for b in names}
    counts = {"records": 0, "requested": 0, "already_done": 0}
    fresh: dict[int, int] = {}  # input position -> offset in the partial file of the row asked this run
    params = {"max_tokens": config.max_tokens, "temperature": config.temperature, "seed": config.seed}

    async with BackendPool(backends, transport=transport, retry=retry) as pool:
        with progress() as bar, open(out.partial, "ab") as partial:
            task = bar.add_task("collecting", total=len(records) if isinstance(records, Sized) else None, status="")

            async def one(rec: RoutingRecord, backend: str) -> None:
                try:
                    res = await pool[backend].chat(messages_for(rec.query, config.system_prompt), **params)
                    rec.responses[backend] = res.text
                    rec.costs[backend] = res.cost
                    stats[backend]["ok"] += 1
                except BackendError as e:
                    rec.errors[backend] = e.short
                    stats[backend]["failed"] += 1

            async def record(i: int, base: RoutingRecord) -> None:
                rec, missing = _merge(base, _read_row(previous.get(base.id)), names)
                counts["already_done"] += len(names) - len(missing)
                counts["requested"] += len(missing)
                if missing:
                    await _all(one(rec, b) for b in missing)
                    fresh[i] = _append(partial, rec)
                bar.update(task, advance=1, status=f"{sum(s['failed'] for s in stats.values())} failed")

            for part in _windows(enumerate(records), window):
                await _all(record(i, base) for i, base in part)
                counts["records"] += len(part)

    failed = _write_output(out, records, counts["records"], previous, fresh)
    out.partial.unlink(missing_ok=True)
    return {**counts, "failed": failed, "by_backend": stats}


class _QueryFile:
    """The first `limit` records of a query file, read afresh on each walk, never all at once.
    Making one walks them once: a bad row stops the run before any request, with an error naming
    its file and line, and the count sizes the progress bar."""

    def __init__(self, path: str | Path, limit: int | None):
        self.path, self.limit = path, limit
        self.count = sum(1 for _ in self)

    def __iter__(self) -> Iterator[RoutingRecord]:
        return islice(iter_records(self.path, RoutingRecord), self.limit)

    def __len__(self) -> int:
        return self.count


def collect(backends: Sequence[BackendConfig], queries_path: str | Path, out_path: str | Path,
            config: CollectConfig | None = None, *, limit: int | None = None, overwrite: bool = False,
            window: int = WINDOW) -> dict[str, Any]:
    """Synchronous entry point (the CLI's)."""
    queries = _QueryFile(queries_path, limit)
    result = asyncio.run(collect_async(backends, queries, out_path, config or CollectConfig(), overwrite=overwrite,
                                       window=window))
    if result["failed"]:
        console.print(f"[yellow]{result['failed']} (query, backend) calls failed[/]; they are in each "
                      "record's `errors` and are retried by the next run", highlight=False)
    return result
