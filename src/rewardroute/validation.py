"""Checks shared by the data readers and the HTTP API: field names as a user wrote them, and
values that parse but cannot be used (non-finite numbers, lone surrogates).

pydantic reports the branch of a union inside an error's location (`('prompt', 'str')`,
`('messages', 0, 'content', 'list[ContentPart]')`); users know only their own field names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

# A union branch as pydantic names it: a type name, a parametrised type, a model class name,
# or a function-validator tag ('function-after[...]').
_UNION_TAG = re.compile(r"^(str|int|float|bool|none|null|[A-Za-z_-]*\[.*\]|[A-Z][A-Za-z]*)$")
_SURROGATE = re.compile("[\ud800-\udfff]")


def field_path(loc: Sequence[Any], data: Any = None, *,
               roots: tuple[str, ...] = ("body", "query", "path", "header")) -> str:
    """('body', 'messages', 0, 'content', 'str') -> 'messages[0].content'. With `data` (what
    was validated), a part is a union tag exactly when it is not a key of the data at that
    point, so a key that looks like a type name ('Claude', 'str') is kept; without it,
    parts that look like union tags are dropped."""
    parts = list(loc)
    if data is None and parts and parts[0] in roots:
        parts = parts[1:]
    if data is None:
        parts = [p for p in parts if isinstance(p, int) or not _UNION_TAG.match(str(p))]
    else:
        kept, node = [], data
        for p in parts:
            if isinstance(node, dict) and p in node:
                kept.append(p)
                node = node[p]
            elif isinstance(node, list) and isinstance(p, int) and 0 <= p < len(node):
                kept.append(p)
                node = node[p]
            elif isinstance(p, int) or not _UNION_TAG.match(str(p)):
                kept.append(p)  # a missing field, or past the data: keep what it names
                node = None
        parts = kept
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


def merge_messages(msgs: Sequence[str]) -> str:
    """One message per field from a union's per-branch messages:
    'Input should be a valid string' + 'Input should be a valid list' ->
    'Input should be a valid string or a valid list'."""
    out: list[str] = []
    for m in msgs:
        if m in out:
            continue
        if out and m.startswith("Input should be ") and out[0].startswith("Input should be "):
            m = m[len("Input should be "):]
        out.append(m)
    return " or ".join(out)


def walk(obj: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of parsed JSON with its path ('logit_bias.50256', 'messages[0].content')."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield path, k  # a key is checked as part of its object
            yield from walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, f"{path}[{i}]")
    else:
        yield path, obj


def bad_value(value: Any) -> str | None:
    """Why `value` cannot be used, or None: a non-finite number, or text with a lone surrogate
    (valid JSON, `"\\ud800"`, but no Unicode text: tokenizers and encoders fail on it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value}"
    if isinstance(value, str):
        m = _SURROGATE.search(value)
        if m is not None:
            return (f"contains a lone surrogate (U+{ord(m.group()):04X} at character {m.start() + 1}), "
                    "which is not valid Unicode text")
    return None


def first_bad_value(obj: Any) -> tuple[str, str] | None:
    """(field path, reason) of the first unusable value anywhere in `obj`, or None."""
    for path, value in walk(obj):
        reason = bad_value(value)
        if reason is not None:
            return path, reason
    return None


# C0 and C1 control characters except tab, newline and carriage return.
_CONTROL = {c: " " for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, *range(0x80, 0xA0)]}


def clean_text(text: str) -> str:
    """Text a model reads: control characters become spaces (a tokenizer may drop, split or
    choke on them; a space keeps word boundaries)."""
    return text.translate(_CONTROL)
