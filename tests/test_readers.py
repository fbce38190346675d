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


# -- hostile files (issue #10) ---------------------------------------------------------------------

def test_a_byte_order_mark_and_crlf_line_ends_are_read(tmp_path: Path) -> None:
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + (_pair_line(id="a") + "\r\n" + _pair_line(id="b") + "\r\n").encode())
    assert [p.id for p in read_pairs(jsonl)] == ["a", "b"]
    csv_file = tmp_path / "bom.csv"
    csv_file.write_bytes(b"\xef\xbb\xbfid,prompt,chosen,rejected,domain\r\nx,\"two\r\nlines\",c,r,chat\r\n"
                         b"y,p,c,r,math\r\n")
    pairs = read_pairs(csv_file)
    assert [p.id for p in pairs] == ["x", "y"] and pairs[0].prompt == "two\r\nlines"
    gz = tmp_path / "bom.jsonl.gz"
    gz.write_bytes(gzip.compress(b"\xef\xbb\xbf" + _pair_line(id="g").encode() + b"\r\n"))
    assert [p.id for p in read_pairs(gz)] == ["g"]


@pytest.mark.parametrize("name", ["bad.jsonl", "bad.jsonl.gz", "bad.csv"])
def test_invalid_utf8_names_file_line_byte_and_column(tmp_path: Path, name: str) -> None:
    if name.endswith(".csv"):
        data = b"id,prompt,chosen,rejected,domain\nx,p,c,r,chat\ny,caf\xc3\xa9 \xff,c,r,chat\n"
    else:
        data = (_pair_line(id="a") + "\n").encode() + b'{"id": "b", "prompt": "caf\xc3\xa9 \xff"}\n'
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(DataError) as info:
        read_pairs(path)
    column = 8 if name.endswith(".csv") else 29  # characters, counting the é as one
    assert str(info.value) == f"{path}:3: invalid UTF-8 (byte 0xff at column {column})" if name.endswith(".csv") \
        else str(info.value) == f"{path}:2: invalid UTF-8 (byte 0xff at column {column})"


def test_invalid_utf8_rows_can_be_skipped(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes((_pair_line(id="a") + "\n").encode() + b"\xfe\n" + (_pair_line(id="c") + "\n").encode())
    report = ReadReport(path=str(path))
    assert [p.id for p in read_pairs(path, skip_bad=True, report=report)] == ["a", "c"]
    assert report.skipped == 1 and "invalid UTF-8 (byte 0xfe at column 1)" in report.errors[0]


@pytest.mark.parametrize("scores, field", [
    ('{"a": NaN, "b": 1.0}', "scores.a"),
    ('{"a": 1.0, "b": Infinity}', "scores.b"),
    ('{"a": -Infinity}', "scores.a"),
])
def test_non_finite_scores_are_rejected_with_file_and_line(tmp_path: Path, scores: str, field: str) -> None:
    path = _write_lines(tmp_path / "r.jsonl", [json.dumps({"id": "q1", "query": "x", "scores": {"a": 1.0}}),
                                               '{"id": "q2", "query": "y", "scores": %s}' % scores])
    with pytest.raises(DataError) as info:
        read_routing(path)
    assert (info.value.line, info.value.field) == (2, field) and "finite" in str(info.value)
    assert str(info.value).startswith(f"{path}:2 field '{field}'")


def test_non_finite_csv_cells_are_rejected_too(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("id,query,scores.a,costs.a\nq1,x,0.5,1\nq2,y,nan,1\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_routing(path)
    assert (info.value.line, info.value.field) == (3, "scores.a")


def test_errors_use_the_field_names_of_the_file(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "p.jsonl", [_pair_line(prompt=5)])
    with pytest.raises(DataError) as info:
        read_pairs(path)
    assert info.value.field == "prompt" and "str" not in str(info.value).split("field")[1].split(":")[0]
    assert str(info.value) == f"{path}:1 field 'prompt': Input should be a valid string or a valid list"
    path = _write_lines(tmp_path / "m.jsonl", [_pair_line(prompt=[{"role": "user", "content": "a"},
                                                                  {"role": "user"}])])
    with pytest.raises(DataError) as info:
        read_pairs(path)
    assert info.value.field == "prompt[1].content"
    # a key that looks like a type name is the user's own: kept
    path = _write_lines(tmp_path / "r.jsonl", [json.dumps({"id": "q", "query": "x", "scores": {"Claude": "high"}})])
    with pytest.raises(DataError) as info:
        read_routing(path)
    assert info.value.field == "scores.Claude"


def test_malformed_json_messages_say_at_once(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "bad.jsonl", ['{"id": "a", "prompt": "unterminated'])
    with pytest.raises(DataError) as info:
        read_pairs(path)
    assert "at at" not in str(info.value) and "starting at column 23" in str(info.value)


def test_commands_report_bad_files_with_file_and_line(tmp_path: Path) -> None:
    """`data validate`, `router train` and `rm score` read through the same readers: a NaN score
    or a byte that is not UTF-8 stops them with file:line, never a traceback."""
    from typer.testing import CliRunner

    from rewardroute.cli import app
    from rewardroute.reward.scoring import score_file

    runner = CliRunner()
    nan = _write_lines(tmp_path / "r.jsonl", [json.dumps({"id": "q1", "query": "x", "scores": {"a": 1.0, "b": 0.0}}),
                                              '{"id": "q2", "query": "y", "scores": {"a": NaN, "b": 0.0}}'])
    for args in (["data", "validate", str(nan)], ["router", "train", "--data", str(nan), "--out", str(tmp_path / "z")]):
        res = runner.invoke(app, args)
        assert res.exit_code != 0 and f"{nan}:2 field 'scores.a'" in res.output.replace("\n", ""), res.output
        assert "Traceback" not in res.output
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "a", "prompt": "p", "chosen": "c", "rejected": "\xe9t\xe9", "domain": "d"}\n')
    res = runner.invoke(app, ["data", "validate", str(bad)])
    assert res.exit_code != 0 and "invalid UTF-8 (byte 0xe9 at column 56)" in res.output.replace("\n", "")
    with pytest.raises(DataError, match=r":1: invalid UTF-8 \(byte 0xe9"):
        score_file(None, bad, tmp_path / "scored.jsonl", model_identity="none")  # fails reading, before any model runs
