"""Deterministic train/valid/test split by a hash of the prompt.

Every record with the same prompt text lands in the same split, so no prompt is seen in
training and scored in test. The hash is stable across machines, Python versions and runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Literal, TypeVar

Split = Literal["train", "valid", "test"]
SPLITS: tuple[Split, ...] = ("train", "valid", "test")
# bucket = first 8 bytes of sha256(prompt text) mod 100; buckets below 80 -> train, below 90 -> valid
TRAIN_BELOW = 80
VALID_BELOW = 90

T = TypeVar("T")


def bucket_of(text: str) -> int:
    """0..99 from the sha256 of the UTF-8 text."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100


def split_of(prompt_text: str) -> Split:
    """"train" (80%), "valid" (10%) or "test" (10%) for a rendered prompt text."""
    b = bucket_of(prompt_text)
    return "train" if b < TRAIN_BELOW else "valid" if b < VALID_BELOW else "test"


def split_records(records: Iterable[T], key: Callable[[T], str]) -> dict[Split, list[T]]:
    """Records grouped by `split_of(key(record))`, in input order. All three splits are present."""
    out: dict[Split, list[T]] = {s: [] for s in SPLITS}
    for r in records:
        out[split_of(key(r))].append(r)
    return out


RULE = (f"split = sha256(rendered prompt text), first 8 bytes big-endian, mod 100: "
        f"< {TRAIN_BELOW} train, < {VALID_BELOW} valid, else test")
