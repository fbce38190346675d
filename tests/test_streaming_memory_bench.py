"""The streaming-memory benchmark runs end to end on a tiny input: every row comes out once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # eight CLI runs in fresh processes (about 30 s)


def test_quick_run_measures_each_command_at_each_size():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "streaming_memory.py"), "--quick",
                           "--sizes", "50,150"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for command in ("rm score", "router score", "router collect", "data build"):
        runs = out["results"][command]
        assert {int(n): r["rows_out"] for n, r in runs.items()} == {50: 50, 150: 150}
        assert all(100 < r["peak_rss_mb"] < 4000 for r in runs.values())  # a real process's RSS, in MB
        assert out["growth"][command]["mb"] == runs["150"]["peak_rss_mb"] - runs["50"]["peak_rss_mb"]
    # the child's own peak: the scorers load torch, collect and build do not, so they stay far below
    # (wait4's ru_maxrss counted the parent's memory and gave every command the same figure)
    assert out["results"]["data build"]["50"]["peak_rss_mb"] < out["results"]["rm score"]["50"]["peak_rss_mb"] - 100
