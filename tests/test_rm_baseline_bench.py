"""The baseline reward-model benchmark in its --quick mode: baselines, intervals, claims."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "rm_baseline.py"
pytestmark = pytest.mark.slow  # a real, if tiny, benchmark run (about a minute)


def test_quick_run_reports_baselines_intervals_and_claims(built_data):
    cmd = [sys.executable, str(SCRIPT), "--quick", "--data", str(built_data), "--train-per-domain", "4",
           "--valid-per-domain", "2", "--eval-per-domain", "4", "--max-length", "32", "--bootstrap", "200"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    cmp = out["comparison"]
    domains = {"chat", "code", "math", "safety", "summarization"}
    assert set(cmp["models"]) == {"single (mixed)", "single (per domain)"}
    assert set(cmp["baselines"]) == {"longer_wins", "length_rule", "surface_logreg"}
    assert set(cmp["best_baseline"]) == domains
    per = cmp["models"]["single (per domain)"]
    assert "vs_single (mixed)" in per and "vs_best_baseline" in per
    for name, row in cmp["models"].items():
        acc = row["accuracy"]
        assert set(acc) == domains | {"average", "overall"}
        assert all(v["low"] <= v["estimate"] <= v["high"] for v in acc.values())
        assert out["accuracy"][name]["average"] == acc["average"]["estimate"]
    assert out["seeds"] == [0] and out["baselines_fitted"]["train_pairs"]["*"] > 1000  # the whole train split
    assert all("beats" in c or "no difference shown" in c for c in out["claims"].values())
