"""Honest figures: fold intervals with fold counts (no silently dropped folds), claims only from
intervals that exclude 0, one definition of best_single, serve_load factors and non-200 counts,
and RESULTS.md / README status generated from the JSON results."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import shutil
from pathlib import Path

import pytest

from rewardroute.errors import ConfigError
from rewardroute.eval.folds import fmt, fold_stats, paired_diff, verdict
from benchlib.results_docs import STATUS_END, STATUS_START, regenerate

REPO = Path(__file__).resolve().parents[1]


def bench(name: str):
    spec = importlib.util.spec_from_file_location(f"_test_bench_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- fold figures -----------------------------------------------------------------------------------

def test_undefined_folds_are_counted_not_dropped():
    s = fold_stats([0.762, None, float("nan"), None, None])
    assert (s["n"], s["of"], s["mean"], s["ci95"]) == (1, 5, 0.762, None)
    assert fmt(s) == "0.762 (1/5 folds, no interval)"  # yesterday: "0.762 ± 0.000"


def test_t_interval_over_folds():
    vals = [0.1, 0.2, 0.3, 0.4, 0.5]
    s = fold_stats(vals)
    sd = math.sqrt(sum((v - 0.3) ** 2 for v in vals) / 4)
    half = 2.7764451051977987 * sd / math.sqrt(5)  # t(0.975, 4)
    assert s["mean"] == pytest.approx(0.3) and s["ci95"] == pytest.approx([0.3 - half, 0.3 + half])
    assert fmt(s) == f"0.300 [{0.3 - half:.3f}, {0.3 + half:.3f}] (5/5 folds)"


def test_t_quantile_matches_scipy():
    from rewardroute.eval.folds import t975

    t = pytest.importorskip("scipy.stats").t  # a check only: the package does not depend on scipy
    for df in (1, 2, 4, 9, 30, 31, 60, 500):
        assert t975(df) == pytest.approx(float(t.ppf(0.975, df)), abs=2e-4)


def test_claims_only_from_an_interval_that_excludes_zero():
    up = paired_diff([0.5, 0.6, 0.55, 0.52], [0.4, 0.45, 0.41, 0.44])
    assert verdict(up, "router", "knn").startswith("router higher than knn")
    noisy = paired_diff([0.5, 0.3, 0.6, 0.2], [0.4, 0.45, 0.41, 0.44])
    assert "no difference shown" in verdict(noisy, "router", "knn")
    assert "no difference shown (no interval)" in verdict(paired_diff([0.9, None], [0.1, 0.2]), "a", "b")
    with pytest.raises(ValueError, match="differ in number"):
        paired_diff([1.0], [1.0, 2.0])


# -- the routing benchmark's report -----------------------------------------------------------------

def _fold(i: int, router: float, bs: float, judge: float | None = None) -> dict:
    ms = {"router": router, "best_single": bs, "knn": bs + 0.01, "mlp": bs, "random": 0.1, "oracle": 0.9, "rmr": 0.2}
    if judge is not None:
        ms["best_single_judge"] = judge
    return {"fold": i, "n": 100, "mean_score": ms, "gap_recovered": (router - bs) / (0.9 - bs),
            "mtr": {"router": 2.0, "best_single": 3.0}, "uplift": {"router": 0.2, "best_single": 0.0},
            "apgr": 0.6, "cpt50": 0.4, "cpt80": 0.7 if i == 0 else None, "auc": 0.7, "aiq": 0.1,
            "best_single_model": "rm-pick", "best_single_judge_model": "judge-pick"}


def test_summary_counts_folds_and_recomputes_gaps():
    r = bench("routing")
    s = r.summarize_folds([_fold(i, 0.5 + i / 100, 0.4) for i in range(5)])
    assert s["cpt80"]["n"] == 1 and s["cpt80"]["of"] == 5
    assert s["gap_recovered_by_method"]["best_single"]["mean"] == 0.0
    assert s["gap_recovered_by_method"]["router"]["mean"] == pytest.approx(
        sum((0.5 + i / 100 - 0.4) / 0.5 for i in range(5)) / 5)


def test_alpaca10_best_single_is_one_model_in_every_column():
    r = bench("routing")
    t = {"folds": [_fold(i, 0.3, 0.2, judge=0.35) for i in range(5)]}
    folds, ref, fallback = r.alpaca10_folds(t)
    assert (ref, fallback) == ("best_single", {})
    s = r.summarize_folds(folds, ref)
    assert s["mean_score"]["best_single"]["mean"] == pytest.approx(0.2)  # the RM's pick, as in MTR/uplift
    assert s["mean_score"]["best_single_judge"]["mean"] == pytest.approx(0.35)
    assert "best_single_judge" not in s["mtr"]  # the judge's pick has no MTR/uplift of another model's
    # an older result stored the judge's pick as best_single's mean score beside the RM pick's MTR
    legacy = {"folds": [dict(_fold(i, 0.3, 0.35)) for i in range(5)], "best_single_rm_models": ["rm-pick"] * 5,
              "summary": {"best_single_rm": {"mean": 0.2, "sd": 0.01}}}
    folds, ref, fallback = r.alpaca10_folds(legacy)
    assert ref == "best_single_judge" and folds[0]["mean_score"]["best_single"] is None
    assert folds[0]["mean_score"]["best_single_judge"] == 0.35
    assert fallback == {"best_single": "0.2000 (sd 0.0100 over folds, no interval)"}


def test_committed_routing_results_regenerate_without_fixed_claims():
    r = bench("routing")
    res = json.loads((REPO / "benchmarks" / "results" / "routing.json").read_text())
    md = r.markdown(res)
    assert "CPT(80%) 0.762 (1/5 folds, no interval)" in md  # AlpacaEval-10: one fold of five
    assert "±" not in md and "every difference is within one fold spread" not in md
    assert "the router cannot be better than the rewards" not in md
    rows = r.status_rows(res)
    assert rows[0][1].startswith("0.040 [") and "(5/5 folds)" in rows[0][1]


# -- serve_load -------------------------------------------------------------------------------------

def test_serve_load_factors_hold_the_other_factor_fixed():
    s = bench("serve_load")
    r = {"batched": {"pairs_per_s": 60.0}, "unbatched": {"pairs_per_s": 50.0},
         "batched_bf16": {"pairs_per_s": 150.0}, "unbatched_bf16": {"pairs_per_s": 100.0}}
    f = s.reward_factors(r)
    assert f == {"batching_at_float32": 1.2, "batching_at_bfloat16": 1.5, "bfloat16_batched": 2.5,
                 "bfloat16_unbatched": 2.0}
    assert s.reward_factors({"batched": {"pairs_per_s": 60.0}})["bfloat16_batched"] is None  # not run: no figure


def test_serve_load_counts_non_200_and_keeps_them_out_of_latency():
    s = bench("serve_load")

    async def main() -> dict:
        n = 0

        async def handle(reader, writer):
            nonlocal n
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0].split(b":")[1])
                await reader.readexactly(length)
                n += 1
                status, delay = (b"503 Busy", 0.0) if n % 4 == 0 else (b"200 OK", 0.02)
                await asyncio.sleep(delay)
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await s.run_load(f"http://127.0.0.1:{port}", "/x", [b"{}"] * 20, 2)
        finally:
            server.close()

    res = asyncio.run(main())
    assert (res["ok"], res["non_200"], res["errors"], res["lost"]) == (15, 5, 5, 0)
    assert res["statuses"] == {"200": 15, "503": 5}
    assert res["p50_ms"] >= 15  # the fast 503s are not in the latency


# -- RESULTS.md and the README status table ---------------------------------------------------------

@pytest.fixture()
def repo(tmp_path) -> Path:
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "toy.py").write_text(
        "def markdown(res):\n    return f\"## toy\\n\\nvalue {res['value']}\\n\"\n\n"
        "def status_rows(res):\n    return [('toy figure', str(res['value']), '', 'one run')]\n\n"
        "if __name__ == '__main__':\n    raise SystemExit('a script is never run by the generator')\n")
    (tmp_path / "benchmarks" / "results" / "toy.json").write_text(json.dumps({"benchmark": "toy", "value": 7}))
    (tmp_path / "benchmarks" / "results" / "toy_quick.json").write_text(json.dumps({"benchmark": "toy", "value": 1}))
    (tmp_path / "benchmarks" / "RESULTS.md").write_text("# Results\n\n<!-- toy:start -->\nold\n<!-- toy:end -->\n\nkept\n")
    (tmp_path / "README.md").write_text(f"intro\n\n{STATUS_START}\nold table\n{STATUS_END}\n\nrest ± stays\n")
    return tmp_path


def test_regenerate_rewrites_sections_and_only_the_readme_status_block(repo):
    md = repo / "benchmarks" / "RESULTS.md"
    md.write_text(md.read_text() + "<!-- other:start -->\nno script renders this\n<!-- other:end -->\n")
    assert regenerate(repo, only="toy")["sections"] == ["toy"]
    assert "value 7" in md.read_text() and md.read_text().count("kept") == 1  # one section, the rest as it was
    done = regenerate(repo)
    assert done == {"sections": ["toy"], "status_rows": ["toy figure"], "kept": ["other"]}
    results = md.read_text()
    assert "value 7" in results and "old" not in results and "no script renders this" in results
    assert "kept\n" not in results  # hand-written prose between sections is not carried over
    readme = (repo / "README.md").read_text()
    assert readme.startswith("intro\n\n") and readme.endswith("rest ± stays\n")
    assert "| toy figure | 7 |  | one run |" in readme and "old table" not in readme and "| 1 |" not in readme


def test_regenerate_from_the_committed_results(repo, tmp_path):
    for name, script in (("routing", "routing"), ("serve_load", "serve_load"), ("rm_domains", "rm_domains"),
                         ("hot_paths", "hot_paths"), ("rm_human_archs", "rm_human")):
        shutil.copy(REPO / "benchmarks" / "results" / f"{name}.json", repo / "benchmarks" / "results")
        shutil.copy(REPO / "benchmarks" / f"{script}.py", repo / "benchmarks")
    done = regenerate(repo)
    assert {"routing", "serve_load", "rm_domains", "hot_paths", "rm_human_archs"} <= set(done["sections"])
    readme = (repo / "README.md").read_text()
    assert "Zooter router, AlpacaEval-57" in readme and "no difference shown" in readme
    assert "router p50, one 64-token query" in readme and "mix `arliss today then add-domain human`" in readme
    assert "Every architecture against human preferences" in (repo / "benchmarks" / "RESULTS.md").read_text()


def test_missing_readme_markers_and_bad_json_are_clear_errors(repo):
    (repo / "README.md").write_text("no markers here\n")
    with pytest.raises(ConfigError, match="readme:status:start"):
        regenerate(repo)
    (repo / "benchmarks" / "results" / "toy.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"toy.json:1"):
        regenerate(repo)
