"""`benchmarks/routing.py --quick`: the real-data routing benchmark runs end to end on small
subsets and prints one JSON object with every baseline beside the router."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_benchmark_prints_one_json_object(built_data, tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "routing.py"), "--quick", "--data",
                           str(built_data), "--work", str(tmp_path / "work"), "--limit", "60",
                           "--no-results-md"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    a = r["alpaca57"]["summary"]
    for method in ("router", "best_single", "knn", "mlp", "random", "oracle"):
        assert a["mean_score"][method]["mean"] is not None, method
    assert a["mean_score"]["oracle"]["mean"] >= a["mean_score"]["best_single"]["mean"]
    assert a["gap_recovered_by_method"]["best_single"]["mean"] == 0.0
    assert len(r["alpaca57"]["folds"]) == 2
    g = r["gsm8k"]["summary"]
    assert 0.0 <= g["auc"]["mean"] <= 1.0 and g["apgr"]["mean"] is not None
    assert [c["target_share"] for c in r["gsm8k"]["calibration"]] == [0.2, 0.5, 0.8]
    assert set(r["ablation"]) == {"beta=0.3", "hard (beta=1)"}
    for png in r["pngs"]:
        assert Path(png).read_bytes()[:4] == b"\x89PNG"
    assert (REPO / "benchmarks" / "results" / "routing_quick.json").exists()
