"""`router collect`: ask every backend for a response to every query, concurrently.

Input: routing records (`id`, `query`, optional `tags`); scores, if present, are carried.
Output: the same records with `responses`, `costs` (per call, from the backend's price and
the reported token usage) and `errors` (backends that failed for good, and why).

Resumable and re-runnable: records are appended to `<out>.partial` as they complete; a
re-run (after a crash, or later to retry failures) keeps every response already collected
for an unchanged query and asks only for what is missing, i.e. the (query, backend) cells
without a response. The final file is written atomically, in input order.

What a response depends on besides its query (the backend set: names, urls, models, prices,
extra request fields; and the generation settings) is the output's fingerprint, kept in
`<out>.fingerprint.json`: a re-run with a different one stops with an error naming what
differs, or starts afresh with `overwrite`. Queries are checked record by record (a changed
query is asked again), so the query file may grow between runs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ..backends.client import BackendError, BackendPool, RetryPolicy
from ..backends.config import BackendConfig
from ..console import console, progress
from ..data.readers import read_routing
from ..data.schemas import Prompt, RoutingRecord
from ..fingerprint import guard_output, settings_value
from ..io import CheckpointedJsonl, write_jsonl_atomic


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


def _read_tolerant(path: Path) -> list[dict]:
    """JSON objects of a file we wrote; a torn last line (a crash mid-write) is dropped."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def _previous(out: CheckpointedJsonl) -> dict[str, RoutingRecord]:
    """Records of earlier runs: the finished file, then the partial one (the last row of an
    id wins, so a retried record replaces its first attempt)."""
    rows: dict[str, RoutingRecord] = {}
    for src in (out.path, out.partial):
        if not src.exists():
            continue
        for raw in _read_tolerant(src):
            try:
                rec = RoutingRecord.model_validate(raw)
            except ValueError:
                continue  # an unreadable old row is simply asked for again
            rows[rec.id] = rec
    return rows


def _merge(base: RoutingRecord, prev: RoutingRecord | None, backends: Sequence[str]) -> tuple[RoutingRecord, list[str]]:
    """The record to fill and the backends still missing for it."""
    if prev is None or prev.query != base.query:
        return base.model_copy(update={"responses": {}, "costs": {}, "errors": {}}), list(backends)
    responses = dict(prev.responses or {})
    costs = dict(prev.costs or {})
    rec = base.model_copy(update={"responses": responses, "costs": costs, "errors": {}})
    return rec, [b for b in backends if b not in responses]


# Backend fields that change what is stored (timeouts, retries and keys do not).
IDENTITY_FIELDS = ("name", "base_url", "model", "cost_per_1k_tokens", "extra_body")


def collect_fingerprint(backends: Sequence[BackendConfig], config: CollectConfig) -> dict[str, Any]:
    return {"backends": sorted((settings_value(b.model_dump(include=set(IDENTITY_FIELDS))) for b in backends),
                               key=lambda b: b["name"]),
            "generation": settings_value(config)}


async def collect_async(backends: Sequence[BackendConfig], records: Sequence[RoutingRecord], out_path: str | Path,
                        config: CollectConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                        retry: RetryPolicy | None = None, overwrite: bool = False) -> dict[str, Any]:
    out = CheckpointedJsonl(out_path)
    guard_output(out.path, collect_fingerprint(backends, config), also=[out.partial], overwrite=overwrite)
    prev = _previous(out)
    names = [b.name for b in backends]
    plan = [_merge(r, prev.get(r.id), names) for r in records]
    todo = sum(len(missing) for _, missing in plan)
    stats = {b: {"ok": 0, "failed": 0} for b in names}
    out.open([r for r, _ in plan if r.id in prev])  # keep what is done in case this run dies
    params = {"max_tokens": config.max_tokens, "temperature": config.temperature, "seed": config.seed}

    async with BackendPool(backends, transport=transport, retry=retry) as pool:
        with progress() as bar:
            task = bar.add_task("collecting", total=todo, status="")

            async def one(rec: RoutingRecord, backend: str) -> None:
                try:
                    res = await pool[backend].chat(messages_for(rec.query, config.system_prompt), **params)
                    rec.responses[backend] = res.text
                    rec.costs[backend] = res.cost
                    stats[backend]["ok"] += 1
                except BackendError as e:
                    rec.errors[backend] = e.short
                    stats[backend]["failed"] += 1
                bar.update(task, advance=1, status=f"{sum(s['failed'] for s in stats.values())} failed")

            async def record(rec: RoutingRecord, missing: list[str]) -> None:
                if missing:
                    await asyncio.gather(*(one(rec, b) for b in missing))
                    out.append(rec)

            try:
                await asyncio.gather(*(record(r, m) for r, m in plan))
            except BaseException:
                out.close()
                raise
    out.close()
    final = [r.model_copy(update={"errors": r.errors or None, "costs": r.costs or None}) for r, _ in plan]
    write_jsonl_atomic(out.path, final)
    out.partial.unlink(missing_ok=True)
    failed_cells = sum(1 for r in final for _ in (r.errors or {}))
    return {"records": len(final), "requested": todo, "already_done": sum(len(names) - len(m) for _, m in plan),
            "failed": failed_cells, "by_backend": stats}


def collect(backends: Sequence[BackendConfig], queries_path: str | Path, out_path: str | Path,
            config: CollectConfig | None = None, *, limit: int | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Synchronous entry point (the CLI's)."""
    records = read_routing(queries_path)
    if limit is not None:
        records = records[:limit]
    result = asyncio.run(collect_async(backends, records, out_path, config or CollectConfig(), overwrite=overwrite))
    if result["failed"]:
        console.print(f"[yellow]{result['failed']} (query, backend) calls failed[/]; they are in each "
                      "record's `errors` and are retried by the next run", highlight=False)
    return result
