"""One resumable JSONL output from work done in one process or shared across a launch's processes.

`run_sharded` is how `rm score` and `router score` write: in one process the whole input goes to
the output; under torchrun / accelerate launch each process takes a contiguous shard of the input
rows into `<output>.shard<R>-of-<W>` (resumable and fingerprinted like any output), and rank 0
joins the shards in rank order, so the output is the one a single process writes, each row once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from .console import progress
from .fingerprint import StaleOutputError, guard_output, read_fingerprint, sidecar_for, write_fingerprint
from .io import CheckpointedJsonl, atomic_path
from .runtime import barrier, is_main_process, process_layout

# work(out, first, stop, advance): append the results of input rows [first, stop) to `out`, in
# order, calling advance(n) as rows are done
Work = Callable[[CheckpointedJsonl, int, int, Callable[[int], None]], None]


def run_sharded(output: str | Path, fields: Mapping[str, Any], total: int, work: Work, *,
                overwrite: bool = False, desc: str = "scoring") -> int:
    """Run `work` over input rows [0, total) into `output`; returns the rows this process found
    already done (resumed). `fields` is the output's fingerprint (inputs, model, settings)."""
    output = Path(output)
    fields = dict(fields)
    rank, world = process_layout()
    if world == 1:
        out = CheckpointedJsonl(output)
        guard_output(out.path, fields, also=[out.partial], overwrite=overwrite)
        return _run_range(out, 0, total, work, desc)
    if _finished(output, fields, overwrite):
        return (rank + 1) * total // world - rank * total // world
    shard = CheckpointedJsonl(shard_path(output, rank, world))
    guard_output(shard.path, {**fields, "shard": f"{rank} of {world}"}, also=[shard.partial], overwrite=overwrite)
    resumed = _run_range(shard, rank * total // world, (rank + 1) * total // world, work,
                         f"{desc} (shard {rank + 1}/{world})")
    barrier()
    if is_main_process():
        _join(output, world, fields)
    barrier()
    return resumed


T = TypeVar("T")


def chunks_in_range(rows: Iterable[T], first: int, stop: int, size: int) -> Iterator[list[T]]:
    """The rows whose index is in [first, stop), in lists of at most `size` (streamed)."""
    part: list[T] = []
    for n, row in enumerate(rows):
        if n < first:
            continue
        if n >= stop:
            break
        part.append(row)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


def shard_path(output: Path, rank: int, world: int) -> Path:
    return output.with_name(f"{output.name}.shard{rank}-of-{world}")


def _run_range(out: CheckpointedJsonl, start: int, stop: int, work: Work, desc: str) -> int:
    done = min(out.resume(), stop - start)
    try:
        with progress() as bar:
            task = bar.add_task(desc, total=stop - start, completed=done, status="")
            work(out, start + done, stop, lambda n: bar.update(task, advance=n))
    except BaseException:
        out.close()
        raise
    out.finish()
    return done


def _finished(output: Path, fields: dict[str, Any], overwrite: bool) -> bool:
    """True when `output` is already this run's finished result. Every process checks the same
    files, so all of them stop on a stale output, never only one (the others would wait forever)."""
    sidecar = sidecar_for(output)
    old = read_fingerprint(sidecar) if output.exists() else None
    if output.exists() and not overwrite and old != fields:
        raise StaleOutputError(f"{output} was made with other inputs or settings (or has no fingerprint); "
                               "start afresh with --overwrite")
    barrier()
    if overwrite and is_main_process():
        output.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
    barrier()
    return not overwrite and old == fields


def _join(output: Path, world: int, fields: dict[str, Any]) -> None:
    """Concatenate the finished shards in rank order (= input order) into `output`, atomically."""
    shards = [shard_path(output, r, world) for r in range(world)]
    with atomic_path(output) as tmp, open(tmp, "wb") as f:
        for s in shards:
            with open(s, "rb") as part:
                while block := part.read(1 << 20):
                    f.write(block)
    write_fingerprint(sidecar_for(output), fields)
    for s in shards:
        s.unlink()
        sidecar_for(s).unlink(missing_ok=True)
