"""`router score`: fill each routing record's `scores` with a reward model's rating of every
response.

The reward model is one of ours (a directory written by `rm train`) or a Hugging Face
sequence-classification reward model given by hub id or local path. Ours score
(prompt, response) with their own pair encoding. A Hugging Face model gets the tokenizer's
chat template (user query, assistant response) when it has one, else the (query, response)
text pair; the reward is the single logit, or logit[1] - logit[0] for a two-label head.

Resumable: finished records go to `<out>.partial` in input order; a re-run keeps the prefix
that still matches the input and scores the rest, but only when the output's fingerprint
(input file hash, the reward model's identity, max_length) is this run's: scores of another
reward model are never kept (an error, or a fresh start with `overwrite`). Models without a response (a backend that
failed) get no score, so `router train` skips or rejects that record instead of learning
from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch

from ..console import console
from ..data.readers import ReadReport, iter_records
from ..data.schemas import Prompt, RoutingRecord, render_prompt
from ..errors import CheckpointError, ConfigError
from ..fingerprint import checkpoint_identity, file_sha256
from ..io import CheckpointedJsonl
from ..sharded import chunks_in_range, run_sharded


class Scorer(Protocol):
    name: str
    identity: str  # what the scores depend on: the checkpoint's hash (and settings)

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], *, batch_size: int) -> list[float]: ...


class OurScorer:
    """A rewardroute reward model (any architecture)."""

    def __init__(self, path: str | Path):
        from ..reward.checkpoint import load_model

        self.model = load_model(path)
        self.name = f"{self.model.arch}:{path}"
        self.identity = f"{self.model.arch}:{checkpoint_identity(path)}"

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], *, batch_size: int) -> list[float]:
        return self.model.score(list(prompts), list(responses), batch_size=batch_size).tolist()


class HFScorer:
    """An `AutoModelForSequenceClassification` reward model (hub id or local path)."""

    def __init__(self, name_or_path: str, *, max_length: int = 512):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            self.model = AutoModelForSequenceClassification.from_pretrained(name_or_path, dtype=torch.float32)
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot load reward model '{name_or_path}': not a rewardroute reward-model "
                              f"directory, and transformers says: {e}") from None
        n_labels = self.model.config.num_labels
        if n_labels not in (1, 2):
            raise ConfigError(f"'{name_or_path}' has {n_labels} labels; a reward model has 1 (or 2: "
                              "logit[1] - logit[0] is used)")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model.eval()  # placed on a device by the caller (rewardroute.runtime.running_on)
        self.max_length = max_length
        self.name = f"hf:{name_or_path}"
        self.identity = f"hf:{_hf_identity(name_or_path, self.model)};max_length={max_length}"
        self.chat = getattr(self.tokenizer, "chat_template", None) is not None

    def _encode(self, prompts: Sequence[Prompt], responses: Sequence[str]):
        if self.chat:
            texts = []
            for p, r in zip(prompts, responses):
                msgs = ([{"role": "user", "content": p}] if isinstance(p, str)
                        else [m.model_dump() for m in p]) + [{"role": "assistant", "content": r}]
                texts.append(self.tokenizer.apply_chat_template(msgs, tokenize=False))
            return self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=True,
                                  return_tensors="pt", add_special_tokens=False)
        return self.tokenizer([render_prompt(p) for p in prompts], list(responses), truncation="longest_first",
                              max_length=self.max_length, padding=True, return_tensors="pt")

    @torch.no_grad()
    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], *, batch_size: int) -> list[float]:
        out: list[float] = []
        for s in range(0, len(prompts), batch_size):
            enc = self._encode(prompts[s:s + batch_size], responses[s:s + batch_size])
            device = next(self.model.parameters()).device
            logits = self.model(**{k: v.to(device) for k, v in enc.items()}).logits.float().cpu()
            out += (logits[:, 0] if logits.size(1) == 1 else logits[:, 1] - logits[:, 0]).tolist()
        return out


def _hf_identity(name_or_path: str, model) -> str:
    """A local folder's file hash; for a hub id, the id at the commit that was loaded."""
    if Path(name_or_path).is_dir():
        return checkpoint_identity(name_or_path)
    commit = getattr(model.config, "_commit_hash", None)
    return f"{name_or_path}@{commit}" if commit else name_or_path


def load_scorer(spec: str | Path, *, max_length: int = 512, precision: str = "fp32") -> Scorer:
    """Ours when `spec` is a rewardroute reward-model directory, else Hugging Face. A precision
    other than fp32 changes the scores, so it is part of the scorer's identity."""
    scorer = _load_scorer(spec, max_length)
    if precision != "fp32":
        scorer.identity += f";precision={precision}"
    return scorer


def _load_scorer(spec: str | Path, max_length: int) -> Scorer:
    path = Path(spec)
    if (path / "config.json").exists():
        import json
        try:
            fmt = json.loads((path / "config.json").read_text(encoding="utf-8")).get("format")
        except (json.JSONDecodeError, AttributeError):
            fmt = None
        if fmt == "rewardroute.reward":
            return OurScorer(path)
        if fmt is not None and str(fmt).startswith("rewardroute."):
            raise CheckpointError(f"{path}: a '{fmt}' checkpoint is not a reward model")
    return HFScorer(str(spec), max_length=max_length)


def _to_score(record: RoutingRecord) -> list[str]:
    """Models of a record that have a response to score (a failed backend has none)."""
    failed = set(record.errors or {})
    return [m for m, text in (record.responses or {}).items() if text is not None and m not in failed]


def score_records(scorer: Scorer, input_path: str | Path, out_path: str | Path, *, batch_size: int = 32,
                  chunk: int = 64, skip_bad: bool = False, overwrite: bool = False) -> dict:
    """Score every response of every record into `out_path`; returns counts (of this process).

    Streams (one chunk of records in memory) and resumes; under a multi-process launch each
    process scores a shard and the output is joined in input order (`sharded.run_sharded`)."""
    report = ReadReport(path=str(input_path))
    total = sum(1 for _ in iter_records(input_path, RoutingRecord, skip_bad=skip_bad, report=report))
    fields = {"input_sha256": file_sha256(input_path), "reward_model": scorer.identity, "skip_bad": skip_bad}
    n_scored = 0

    def work(out: CheckpointedJsonl, first: int, stop: int, advance) -> None:
        nonlocal n_scored
        # the first pass validated every row: skipping here drops the same (bad) rows
        for part in chunks_in_range(iter_records(input_path, RoutingRecord, skip_bad=True), first, stop, chunk):
            n_scored += _score_part(scorer, part, out, batch_size)
            advance(len(part))

    resumed = run_sharded(out_path, fields, total, work, overwrite=overwrite, desc=f"scoring with {scorer.name}")
    if report.skipped:
        console.print(f"[yellow]skipped {report.skipped} bad rows[/]; first: {report.errors[0]}", highlight=False)
    return {"records": total, "resumed": resumed, "responses_scored": n_scored, "skipped_rows": report.skipped}


def _score_part(scorer: Scorer, part: list[RoutingRecord], out: CheckpointedJsonl, batch_size: int) -> int:
    """Score the responses of `part` and append the records with their scores; returns how many."""
    cells = [(i, m) for i, r in enumerate(part) for m in _to_score(r)]
    rewards = scorer.score([part[i].query for i, _ in cells], [part[i].responses[m] for i, m in cells],
                           batch_size=batch_size) if cells else []
    new_scores: list[dict[str, float]] = [{} for _ in part]
    for (i, m), v in zip(cells, rewards):
        new_scores[i][m] = float(v)
    for r, sc in zip(part, new_scores):
        out.append(r.model_copy(update={"scores": sc}))
    return len(cells)
