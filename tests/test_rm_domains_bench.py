"""The router-based reward-model benchmark in its CI-sized --quick mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "rm_domains.py"
pytestmark = pytest.mark.slow  # a real, if tiny, benchmark run (about a minute and a half)


@pytest.fixture(scope="module")
def quick_run(built_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rm_domains")
    md = tmp / "RESULTS.md"
    md.write_text("# Benchmark results\n\n<!-- other:start -->\nkeep me\n<!-- other:end -->\n")
    cmd = [sys.executable, str(SCRIPT), "--quick", "--data", str(built_data), "--domains", "math,safety",
           "--train-per-domain", "4", "--valid-per-domain", "2", "--eval-per-domain", "4", "--max-length", "32",
           "--stream-pairs", "8", "--stream-chunk", "4", "--work", str(tmp / "work"),
           "--results-dir", str(tmp / "results"), "--results-md", str(md)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), tmp, md


def test_quick_run_reports_every_architecture(quick_run):
    out, tmp, _ = quick_run
    res = out["results"]["minilm"]
    assert set(res["models"]) == {"single", "more", "rodos", "arliss"}
    for arch, r in res["models"].items():
        assert set(r["accuracy"]) == {"overall", "math", "safety"}, arch
        for key in ("average", "params", "pairs_per_second", "inference_peak_rss_mb", "train_seconds"):
            assert key in r, (arch, key)
        assert r["params"]["loaded_for_inference"] > 0
    for arch in ("rodos", "arliss"):
        assert 0 <= res["models"][arch]["router_accuracy"] <= 1 and "oracle_accuracy" in res["models"][arch]
    assert "average" in res["longer response wins"]
    t = out["targets"]["minilm"]
    assert {"average_at_least_single", "arliss_params_vs_rodos", "arliss_throughput_vs_single"} <= set(t)
    assert t["arliss_params_vs_rodos"]["ratio"] < 0.4  # two domains here: rodos loads three backbones
    assert (tmp / "results" / "rm_domains_quick.png").stat().st_size > 1000
    assert json.loads((tmp / "results" / "rm_domains_quick.json").read_text())["benchmark"] == "rm_domains"


def test_results_markdown_section_is_written_between_markers(quick_run):
    _, _, md = quick_run
    text = md.read_text()
    assert "<!-- other:start -->\nkeep me\n<!-- other:end -->" in text
    assert "<!-- rm_domains_quick:start -->" in text and "| longer response wins |" in text


def test_finished_parts_are_kept_for_a_rerun(quick_run):
    _, tmp, _ = quick_run
    cached = sorted(p.name for p in (tmp / "work" / "minilm").glob("*.json"))
    assert "train-rodos.json" in cached and "throughput-all.json" in cached
