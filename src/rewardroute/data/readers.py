"""Readers for JSONL (optionally gzipped), CSV, Parquet and the Hugging Face hub.

Every reader validates each row against a schema. A bad row raises a `DataError` naming the
file, the line and the field (as the file spells it: `prompt`, not pydantic's `prompt.str`);
with `skip_bad=True` it is skipped and counted instead. Text files are UTF-8, with or without
a byte-order mark, with LF or CRLF line ends; a line that is not UTF-8 is a bad row that says
which byte. Non-finite numbers (NaN, Infinity) and lone surrogates are bad values.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import DataError
from ..validation import field_path, first_bad_value, merge_messages
from .schemas import PreferencePair, RoutingRecord

T = TypeVar("T", bound=BaseModel)

HF_PREFIX = "hf://"


@dataclass
class ReadReport:
    """What a read did: rows kept, rows skipped, and the first few reasons."""

    path: str
    kept: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def note(self, err: DataError) -> None:
        self.skipped += 1
        if len(self.errors) < 5:
            self.errors.append(str(err))


BOM = b"\xef\xbb\xbf"


def open_text(path: str | Path) -> io.TextIOBase:
    """A text file (gzipped or not) as UTF-8; a byte-order mark is dropped. Lines keep their
    ends as written (newline=""), as the csv module wants."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def text_lines(path: str | Path) -> Iterator[tuple[int, str | DataError]]:
    """(line number, text) for each line, its end kept; a line that is not UTF-8 comes as a
    DataError naming the line, the byte and its column, instead of its text."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if lineno == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                column = len(raw[:e.start].decode("utf-8", "replace")) + 1
                yield lineno, DataError(f"invalid UTF-8 (byte 0x{raw[e.start]:02x} at column {column})",
                                        path=path, line=lineno)


def iter_raw(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, raw dict) from any supported file. Raises DataError on bad syntax."""
    spath = str(path)
    if spath.startswith(HF_PREFIX):
        yield from _iter_hf(spath[len(HF_PREFIX):])
        return
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", path=path)
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        yield from _iter_jsonl(path)
    elif name.endswith(".csv"):
        yield from _iter_csv(path)
    elif name.endswith(".parquet"):
        yield from _iter_parquet(path)
    else:
        raise DataError("unknown file type (expected .jsonl, .csv or .parquet, optionally .gz)", path=path)


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for lineno, line in text_lines(path):
        if isinstance(line, DataError):
            yield lineno, line
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as e:
            # Some messages end in "at" ("Unterminated string starting at"): no "at at".
            where = f"column {e.colno}" if e.msg.endswith(" at") else f"at column {e.colno}"
            yield lineno, DataError(f"malformed JSON ({e.msg} {where})", path=path, line=lineno)
            continue
        if not isinstance(obj, dict):
            yield lineno, DataError(f"expected a JSON object, got {type(obj).__name__}", path=path, line=lineno)
            continue
        yield lineno, obj


# CSV columns that may hold JSON (lists or objects), and the ones that may be spread over
# dotted columns such as `scores.gpt-4`. Other cells stay text even if they start with "[".
JSON_COLUMNS = {"prompt", "query", "tags", "scores", "costs", "responses", "errors"}
DOTTED_COLUMNS = {"scores", "costs", "responses", "errors"}


def _cell(key: str, value: str) -> Any:
    v = value.strip()
    if key in JSON_COLUMNS and v[:1] in "[{":
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return value
    return value


def _unflatten(row: dict[str, Any]) -> dict[str, Any]:
    """`scores.gpt4` style columns become nested dicts; empty cells are dropped."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key is None or value is None or value == "":
            continue
        value = _cell(key, value) if isinstance(value, str) else value
        head, dot, tail = key.partition(".")
        if dot and head in DOTTED_COLUMNS:
            out.setdefault(head, {})[tail] = value
        else:
            out[key] = value
    return out


def _iter_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    def lines() -> Iterator[str]:
        for _lineno, line in text_lines(path):
            if isinstance(line, DataError):
                raise line  # a record may span lines: no skipping a part of one
            yield line

    reader = csv.DictReader(lines())
    for row in reader:
        # reader.line_num is the physical line where this record ended
        yield reader.line_num, _unflatten(row)


def _iter_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - depends on the install
        raise DataError("reading Parquet needs pyarrow: pip install 'rewardroute[parquet]'", path=path) from e
    table = pq.read_table(path)
    for i, row in enumerate(table.to_pylist(), start=1):
        yield i, {k: v for k, v in row.items() if v is not None}


def _iter_hf(spec: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """`hf://owner/name[:split]`: a dataset from the Hugging Face hub (or its cache), or a local
    dataset folder through the same loader (`hf:///path/to/folder:split`: a `save_to_disk` folder,
    or a folder of data files that `datasets.load_dataset` reads)."""
    name, _, split = spec.rpartition(":") if ":" in spec else (spec, "", "")
    try:
        import datasets
    except ImportError as e:
        raise DataError("reading from the hub needs `datasets`: pip install 'rewardroute[hf]'",
                        path=HF_PREFIX + spec) from e
    try:
        if (Path(name) / "dataset_dict.json").exists() or (Path(name) / "dataset_info.json").exists():
            ds = datasets.load_from_disk(name)
            ds = ds[split or "train"] if isinstance(ds, datasets.DatasetDict) else ds
        else:
            ds = datasets.load_dataset(name, split=split or "train")
    except Exception as e:  # network or name errors: say which
        raise DataError(f"could not load dataset from the hub ({type(e).__name__}: {e})",
                        path=HF_PREFIX + spec) from e
    for i, row in enumerate(ds, start=1):
        yield i, dict(row)


def validate(schema: type[T], raw: dict[str, Any], *, path: str | Path, line: int) -> T:
    try:
        obj = schema.model_validate(raw)
    except ValidationError as e:
        errors = [(field_path(err["loc"], raw), err) for err in e.errors()]
        # A union (prompt: text or messages) reports each branch. The deepest field is the one
        # the row meant (a list of messages with a bad message); same-field branches merge.
        loc = max(errors, key=lambda pe: pe[0].count(".") + pe[0].count("["))[0]
        msgs = ["missing" if err["type"] == "missing" else err["msg"] for path, err in errors if path == loc]
        raise DataError(merge_messages(msgs), path=path, line=line, field=loc or None) from None
    bad = first_bad_value(obj.model_dump())  # NaN scores, "inf" CSV cells, lone surrogates
    if bad is not None:
        raise DataError(bad[1], path=path, line=line, field=bad[0] or None)
    return obj


def iter_records(path: str | Path, schema: type[T], *, skip_bad: bool = False,
                 report: ReadReport | None = None) -> Iterator[T]:
    """Validate and yield the rows of `path` one by one (memory stays flat whatever its size)."""
    report = report if report is not None else ReadReport(path=str(path))
    for lineno, raw in iter_raw(path):
        try:
            if isinstance(raw, DataError):
                raise raw
            record = validate(schema, raw, path=path, line=lineno)
        except DataError as err:
            if not skip_bad:
                raise
            report.note(err)
            continue
        report.kept += 1
        yield record


def read_records(path: str | Path, schema: type[T], *, skip_bad: bool = False,
                 report: ReadReport | None = None) -> list[T]:
    """Read and validate every row of `path`. See the module docstring for errors."""
    return list(iter_records(path, schema, skip_bad=skip_bad, report=report))


def read_pairs(path: str | Path, *, skip_bad: bool = False, report: ReadReport | None = None) -> list[PreferencePair]:
    return read_records(path, PreferencePair, skip_bad=skip_bad, report=report)


def read_routing(path: str | Path, *, skip_bad: bool = False, report: ReadReport | None = None) -> list[RoutingRecord]:
    return read_records(path, RoutingRecord, skip_bad=skip_bad, report=report)
