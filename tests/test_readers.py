"""Readers: JSONL / CSV / Parquet round trips and errors that name the file, the line and the field."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from rewardroute.data.readers import ReadReport, read_pairs, read_routing
from rewardroute.data.schemas import Message, PreferencePair, RoutingRecord
from rewardroute.errors import DataError
from rewardroute.io import write_jsonl_atomic

PAIRS = [
    PreferencePair(id="p1", prompt="What is 2+2?", chosen="4", rejected="5", domain="math", source="toy"),
    PreferencePair(id="p2", prompt=[Message(role="user", content="Hi"), Message(role="assistant", content="Hello"),
                                    Message(role="user", content="Tell me a joke")],
                   chosen="Why did the chicken...", rejected="No.", domain="chat"),
]
ROUTING = [
    RoutingRecord(id="q1", query="Sort a list", tags=["code"], responses={"a": "sorted(x)", "b": "x.sort"},
                  scores={"a": 1.0, "b": 0.0}),
    RoutingRecord(id="q2", query="Capital of France?", tags=["qa", "geo"], scores={"a": 0.5}),
]


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _pair_line(**overrides) -> str:
    row = {"id": "x", "prompt": "p", "chosen": "c", "rejected": "r", "domain": "chat"}
    row.update(overrides)
    return json.dumps({k: v for k, v in row.items() if v is not None})


def test_jsonl_round_trip_pairs_and_routing(tmp_path: Path) -> None:
    write_jsonl_atomic(tmp_path / "pairs.jsonl", PAIRS)
    write_jsonl_atomic(tmp_path / "routing.jsonl", ROUTING)
    assert read_pairs(tmp_path / "pairs.jsonl") == PAIRS
    assert read_routing(tmp_path / "routing.jsonl") == ROUTING


def test_jsonl_gz_is_read_transparently(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for p in PAIRS:
            f.write(p.model_dump_json(exclude_none=True) + "\n")
    assert read_pairs(path) == PAIRS


def test_parquet_round_trip(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    # one file per prompt type: a Parquet column has one type (string, or list of message structs)
    for i, pair in enumerate(PAIRS):
        pq.write_table(pa.Table.from_pylist([pair.model_dump(exclude_none=True)]), tmp_path / f"p{i}.parquet")
        assert read_pairs(tmp_path / f"p{i}.parquet") == [pair]

    pq.write_table(pa.Table.from_pylist([ROUTING[0].model_dump(exclude_none=True)]), tmp_path / "r.parquet")
    assert read_routing(tmp_path / "r.parquet") == ROUTING[:1]


def test_csv_dotted_columns_and_json_cells(tmp_path: Path) -> None:
    path = tmp_path / "routing.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "query", "tags", "scores.gpt4", "scores.mixtral", "responses.gpt4"])
        w.writerow(["1", "Add 2 and 2", '["math", "easy"]', "1.0", "0.0", "4"])
        w.writerow(["2", "Name a colour", "chat", "0.5", "", "blue"])  # empty cell: model absent
    first, second = read_routing(path)
    assert first.id == "1" and first.tags == ["math", "easy"]
    assert first.scores == {"gpt4": 1.0, "mixtral": 0.0} and first.responses == {"gpt4": "4"}
    assert second.tags == ["chat"] and second.scores == {"gpt4": 0.5}


def test_csv_pairs_with_message_prompt_cell(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    messages = [{"role": "user", "content": "Hi"}]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "prompt", "chosen", "rejected", "domain"])
        w.writerow(["a", json.dumps(messages), "Hello!", "...", "chat"])
    (pair,) = read_pairs(path)
    assert pair.prompt == [Message(role="user", content="Hi")] and pair.chosen == "Hello!"


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "bad.jsonl", [_pair_line(id="a"), _pair_line(id="b"), '{"id": "c", "prompt": '])
    with pytest.raises(DataError) as info:
        read_pairs(path)
    err = info.value
    assert err.path == str(path) and err.line == 3
    assert f"{path}:3" in str(err) and "malformed JSON" in str(err)


def test_missing_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "bad.jsonl", [_pair_line(id="a"), "", _pair_line(id="b", rejected=None)])
    with pytest.raises(DataError) as info:
        read_pairs(path)
    err = info.value
    assert (err.line, err.field) == (3, "rejected")  # the blank line still counts
    assert str(err) == f"{path}:3 field 'rejected': missing"


def test_wrong_type_names_the_nested_field(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "bad.jsonl", [json.dumps({"id": "q", "query": "x", "scores": {"m": "high"}})])
    with pytest.raises(DataError) as info:
        read_routing(path)
    assert info.value.field == "scores.m" and info.value.line == 1


def test_skip_bad_skips_and_counts(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "mixed.jsonl", [
        _pair_line(id="a"), "not json", _pair_line(id="b", chosen=None), '["a", "list"]', _pair_line(id="c")])
    report = ReadReport(path=str(path))
    pairs = read_pairs(path, skip_bad=True, report=report)
    assert [p.id for p in pairs] == ["a", "c"]
    assert (report.kept, report.skipped) == (2, 3)
    assert report.errors[0].startswith(f"{path}:2") and f"{path}:3 field 'chosen'" in report.errors[1]


def test_unknown_extension_and_missing_file_error_clearly(tmp_path: Path) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text(_pair_line() + "\n")
    with pytest.raises(DataError, match=r"unknown file type .*\.jsonl, \.csv or \.parquet"):
        read_pairs(path)
    with pytest.raises(DataError, match="file not found") as info:
        read_pairs(tmp_path / "absent.jsonl")
    assert str(tmp_path / "absent.jsonl") in str(info.value)
