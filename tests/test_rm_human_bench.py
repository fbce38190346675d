"""The human-preference mix benchmark in its --quick mode: the mixes are what they say, the
default is chosen on valid, and finished runs are reused only for the same settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "rm_human.py"
pytestmark = pytest.mark.slow  # five tiny models trained and scored (about a minute)


def _run(built_data: Path, human: Path, work: Path, *extra: str) -> tuple[dict, str]:
    cmd = [sys.executable, str(SCRIPT), "--quick", "--data", str(built_data), "--human-data", str(human),
           "--work", str(work), *extra]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout + proc.stderr


def test_quick_run_trains_each_mix_and_chooses_the_default_on_valid(built_data, tmp_path):
    out, log = _run(built_data, tmp_path / "human", tmp_path / "work")
    runs = {m: r[0] for m, r in out["runs"].items()}
    five = {"chat", "code", "math", "safety", "summarization"}
    assert set(runs["today"]["train_by_domain"]) == five
    assert set(runs["today+human"]["train_by_domain"]) == five | {"human"}
    assert runs["human only"]["train_by_domain"] == {"human": runs["today"]["train_pairs"]}
    assert runs["today (chat 1/4)"]["train_by_domain"]["chat"] == runs["today"]["train_by_domain"]["chat"] // 4
    assert runs["today+human (length-balanced)"]["train_longer_wins"] == 0.5
    for s in ("human_valid", "human_test", "five_valid", "five_test"):
        cmp = out["comparison"][s]
        assert set(cmp["baselines"]) == {"longer_wins", "length_rule", "surface_logreg"}
        assert set(cmp["models"]) == set(runs)
    assert out["sets"]["human_test"] == 24 and set(out["sets_by_source"]["human_test"]) <= {
        "qa_feedback", "haluquestqa", "llmbar_natural", "mt_bench_human"}
    d = out["default"]
    pool = d["eligible"] or list(runs)
    assert d["mix"] == max(pool, key=lambda m: d["human_valid"][m])
    assert all(d["five_valid"][m] >= d["length_rule_five_valid"] for m in d["eligible"])

    # the same settings reuse every finished run; other settings train afresh
    again, log = _run(built_data, tmp_path / "human", tmp_path / "work", "--mixes", "today")
    assert "reusing today seed 0" in log and again["accuracy"]["today"] == out["accuracy"]["today"]
    routed = "rodos today then add-domain human"
    out, log = _run(built_data, tmp_path / "human", tmp_path / "work", "--mixes", f"today,{routed}", "--lr", "3e-4")
    assert "training today seed 0" in log
    run = out["runs"][routed][0]
    assert run["arch"] == "rodos" and run["add_domain"]["expert"]["pairs"] == run["train_by_domain"]["human"]
    assert out["default"]["mix"] == "today"  # another architecture is never the default mix
