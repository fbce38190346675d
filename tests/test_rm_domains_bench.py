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
    for arch in ("more", "rodos", "arliss"):  # what the gate / router learned, by true domain
        load = res["models"][arch]["expert_load"]
        assert set(load) == {"math", "safety"} and all(sum(row.values()) == pytest.approx(1, abs=1e-3)
                                                       for row in load.values()), arch
    assert "average" in res["longer response wins"]
    # intervals, the three baselines fitted on train, and paired differences with claims
    cmp = res["comparison"]
    assert set(cmp["baselines"]) == {"longer_wins", "length_rule", "surface_logreg"}
    assert set(cmp["best_baseline"]) == {"math", "safety"}
    for arch, r in res["models"].items():
        iv = r["intervals"]["accuracy"]["average"]
        assert iv["low"] <= iv["estimate"] <= iv["high"] and iv["estimate"] == pytest.approx(r["average"], abs=1e-4)
        claim = r["intervals"]["vs_best_baseline"]["average"]["claim"]
        assert "beats" in claim or "no difference shown" in claim
        assert ("vs_single" in r["intervals"]) == (arch != "single")
    assert res["seeds"] == [0] and set(res["oracle_comparison"]["models"]) == {"rodos (oracle routing)",
                                                                                "arliss (oracle routing)"}
    assert res["baselines_fitted"]["train_pairs"]["*"] > 100  # the whole train split, not the 4 pairs per domain
    t = out["targets"]["minilm"]
    assert {"average_at_least_single", "arliss_params_vs_rodos", "arliss_throughput_vs_single",
            "beats_best_baseline"} <= set(t)
    assert all(v["met"] == (v["difference"]["low"] > 0) for v in t["average_at_least_single"].values())
    assert t["arliss_params_vs_rodos"]["ratio"] < 0.4  # two domains here: rodos loads three backbones
    assert (tmp / "results" / "rm_domains_quick.png").stat().st_size > 1000
    assert json.loads((tmp / "results" / "rm_domains_quick.json").read_text())["benchmark"] == "rm_domains"


def test_results_markdown_section_is_written_between_markers(quick_run):
    _, _, md = quick_run
    text = md.read_text()
    assert "<!-- other:start -->\nkeep me\n<!-- other:end -->" in text
    assert "<!-- rm_domains_quick:start -->" in text and "| length_rule |" in text and "| surface_logreg |" in text
    assert "rodos - single" in text and "- average: " in text
    assert "What `more` routes to" in text and "| true domain | math | safety |" in text


def test_finished_parts_are_kept_for_a_rerun(quick_run):
    _, tmp, _ = quick_run
    cached = sorted(p.name for p in (tmp / "work" / "minilm").glob("*.json"))
    assert "train-rodos-seed0.json" in cached and "throughput-all-seed0.json" in cached
    key = json.loads((tmp / "work" / "minilm" / "eval-single-seed0.json").read_text())["key"]
    assert key["seed"] == 0 and len(key["data"]) == 16 and len(key["code"]) == 16


def test_cache_key_changes_with_the_data_and_the_code(built_data, tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("rm_domains_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import shutil
    copy = tmp_path / "data"
    shutil.copytree(built_data, copy)
    args = mod.parse(["--quick", "--data", str(copy)])
    before = mod.data_digest(args)
    assert before == mod.data_digest(args)
    with open(copy / "prefs" / "test.jsonl", "a", encoding="utf-8") as f:
        f.write("\n")
    assert mod.data_digest(args) != before
    assert len(mod.code_digest()) == 16 and mod.code_digest() == mod.code_digest()
