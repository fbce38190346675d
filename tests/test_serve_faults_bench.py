"""`benchmarks/serve_faults.py --quick`: the fault matrix runs end to end against real
processes, loses no request, and answers 5xx only where no backend can answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.e2e
def test_fault_matrix_quick_run_loses_nothing():
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "serve_faults.py"), "--quick"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res == json.loads((REPO / "benchmarks" / "results" / "serve_faults_quick.json").read_text())
    rows = {r["fault"]: r for r in res["faults"]}
    assert set(rows) == {"500", "garbage", "close", "hang", "trickle", "flap", "all_down", "poison"}
    poisoned = rows["poison"]["poisoned"]
    for fault, r in rows.items():
        sent = r["sent"] + (poisoned["sent"] if fault == "poison" else 0)  # poison: good + poisoned
        assert sent == 64 and r["answered"] == r["sent"] and r["lost"] == 0, r
        if fault == "all_down":
            assert r["5xx"] == 64
        else:
            assert r["2xx"] == r["sent"] and r["5xx"] == 0, r
    assert poisoned["4xx"] == poisoned["sent"] and poisoned["lost"] == 0
    # a hanging or trickling backend costs a request about one timeout (2 s) before the
    # fallback, two for the few that retried just before the breaker opened
    assert rows["hang"]["p99_ms"] < 2 * 2000 + 1500 and rows["trickle"]["p99_ms"] < 2 * 2000 + 1500
