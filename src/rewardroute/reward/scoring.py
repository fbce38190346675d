"""Scoring files of (prompt, response) rows with a reward model, resumably, in one process or
several (`torchrun` / `accelerate launch`: each process scores a contiguous shard, rank 0 joins
the shards in input order, so the output is the one a single process writes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..console import progress
from ..data.readers import iter_raw
from ..data.schemas import Message, render_prompt
from ..errors import DataError
from ..fingerprint import StaleOutputError, file_sha256, guard_output, read_fingerprint, sidecar_for, write_fingerprint
from ..io import CheckpointedJsonl, atomic_path
from ..runtime import barrier, is_main_process, process_layout
from .base import RewardModel


def _prompt_text(raw: dict[str, Any], path: Path, line: int) -> str:
    if "prompt" not in raw:
        raise DataError("missing", path=path, line=line, field="prompt")
    p = raw["prompt"]
    if isinstance(p, list):
        try:
            return render_prompt([Message.model_validate(m) for m in p])
        except Exception as e:
            raise DataError(f"not a list of chat messages ({e})", path=path, line=line, field="prompt") from None
    if not isinstance(p, str):
        raise DataError("must be a string or a list of messages", path=path, line=line, field="prompt")
    return p


def _text(raw: dict[str, Any], key: str, path: Path, line: int) -> str:
    v = raw.get(key)
    if not isinstance(v, str):
        raise DataError("missing" if v is None else "must be a string", path=path, line=line, field=key)
    return v


def _rows(input_path: Path) -> Iterator[tuple[dict[str, Any], str, list[str]]]:
    """(raw row, prompt text, texts to score) for each input row, streamed; a bad row is a DataError."""
    for line, raw in iter_raw(input_path):
        if isinstance(raw, DataError):
            raise raw
        prompt = _prompt_text(raw, input_path, line)
        if "response" in raw:
            texts = [_text(raw, "response", input_path, line)]
        elif "chosen" in raw or "rejected" in raw:
            texts = [_text(raw, "chosen", input_path, line), _text(raw, "rejected", input_path, line)]
        else:
            raise DataError("missing (need `response`, or `chosen` and `rejected`)", path=input_path,
                            line=line, field="response")
        yield raw, prompt, texts


def score_file(model: RewardModel, input_path: str | Path, output_path: str | Path, *, model_identity: str,
               batch_size: int = 64, chunk: int = 256, overwrite: bool = False,
               settings: dict[str, Any] | None = None) -> int:
    """Write every input row plus its reward(s) to `output_path`. Rows with `response` get
    `reward`; rows with `chosen`/`rejected` get `chosen_reward`/`rejected_reward`.

    Streams: memory holds one chunk of rows, whatever the file's size. Resumable: rows already
    written are kept only when the output's fingerprint (input file hash, `model_identity`,
    `settings` that change the result such as the precision) is this run's; otherwise a
    `StaleOutputError`, or with `overwrite` a fresh start."""
    input_path, output_path = Path(input_path), Path(output_path)
    total = sum(1 for _ in _rows(input_path))  # validates every row before anything is written
    fields = {"input_sha256": file_sha256(input_path), "model": model_identity, **(settings or {})}
    rank, world = process_layout()
    if world == 1:
        out = CheckpointedJsonl(output_path)
        guard_output(out.path, fields, also=[out.partial], overwrite=overwrite)
        _score_range(model, input_path, out, 0, total, batch_size, chunk)
        return total
    if _finished_output(output_path, fields, overwrite):
        return total
    start, stop = rank * total // world, (rank + 1) * total // world
    shard = CheckpointedJsonl(shard_path(output_path, rank, world))
    guard_output(shard.path, {**fields, "shard": f"{rank} of {world}"}, also=[shard.partial], overwrite=overwrite)
    _score_range(model, input_path, shard, start, stop, batch_size, chunk, desc=f"scoring (shard {rank + 1}/{world})")
    barrier()
    if is_main_process():
        _join_shards(output_path, world, fields)
    barrier()
    return total


def shard_path(output: Path, rank: int, world: int) -> Path:
    return output.with_name(f"{output.name}.shard{rank}-of-{world}")


def _finished_output(output: Path, fields: dict[str, Any], overwrite: bool) -> bool:
    """Under several processes: True when `output` is already this run's finished result. Every
    process checks the same files, so all of them stop on a stale output, never only one."""
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


def _join_shards(output: Path, world: int, fields: dict[str, Any]) -> None:
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


def _score_range(model: RewardModel, input_path: Path, out: CheckpointedJsonl, start: int, stop: int,
                 batch_size: int, chunk: int, desc: str = "scoring") -> None:
    """Score input rows [start, stop) into `out`, carrying on after the rows it already holds."""
    done = min(out.resume(), stop - start)
    with progress() as bar:
        task = bar.add_task(desc, total=stop - start, completed=done, status="")
        part: list[tuple[dict[str, Any], str, list[str]]] = []
        for n, row in enumerate(_rows(input_path)):
            if n < start + done:
                continue
            if n >= stop:
                break
            part.append(row)
            if len(part) == chunk or n == stop - 1:
                _score_chunk(model, part, out, batch_size)
                bar.update(task, advance=len(part))
                part = []
    out.finish()


def _score_chunk(model: RewardModel, part: list[tuple[dict[str, Any], str, list[str]]], out: CheckpointedJsonl,
                 batch_size: int) -> None:
    prompts = [p for _, p, texts in part for _ in texts]
    responses = [t for _, _, texts in part for t in texts]
    rewards = model.score(prompts, responses, batch_size=batch_size).tolist()
    i = 0
    for raw, _, texts in part:
        row = dict(raw)
        if len(texts) == 1:
            row["reward"] = rewards[i]
        else:
            row["chosen_reward"], row["rejected_reward"] = rewards[i], rewards[i + 1]
        i += len(texts)
        out.append(row)
