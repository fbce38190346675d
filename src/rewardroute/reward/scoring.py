"""Scoring files of (prompt, response) rows with a reward model, resumably, in one process or
several (`torchrun` / `accelerate launch`: each process scores a contiguous shard, rank 0 joins
the shards in input order, so the output is the one a single process writes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..data.readers import iter_raw
from ..data.schemas import Message, render_prompt
from ..errors import DataError
from ..fingerprint import file_sha256
from ..io import CheckpointedJsonl
from ..sharded import chunks_in_range, run_sharded
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
    `StaleOutputError`, or with `overwrite` a fresh start. Under a multi-process launch each
    process scores a shard (`sharded.run_sharded`)."""
    input_path = Path(input_path)
    total = sum(1 for _ in _rows(input_path))  # validates every row before anything is written
    fields = {"input_sha256": file_sha256(input_path), "model": model_identity, **(settings or {})}

    def work(out: CheckpointedJsonl, first: int, stop: int, advance) -> None:
        for part in chunks_in_range(_rows(input_path), first, stop, chunk):
            _score_chunk(model, part, out, batch_size)
            advance(len(part))

    run_sharded(output_path, fields, total, work, overwrite=overwrite)
    return total


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
