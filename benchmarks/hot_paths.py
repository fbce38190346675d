"""Hot paths on one machine, each beside its limit.

    python benchmarks/hot_paths.py            # about 5 minutes on 2 CPUs
    python benchmarks/hot_paths.py --quick    # a smoke run (results go to hot_paths_quick.json)

* Scoring: the limit is the raw backbone forward (plus head) over the same pairs, tokenised once
  and sorted by length, in this process; beside it, the end-to-end `score` of `single` and
  `arliss` (which also routes each prompt). Target: both at >= 0.85x the limit.
* Router: p50/p99 latency of one 64-token query through `ExpertRouter.probs`, beside the raw
  forward of the same pre-tokenised query. Target: p50 < 10 ms.
* Training: pairs/s of `single` (full fine-tuning) and `arliss` (one LoRA adapter), and the peak
  memory of a step on the longest batch, plain and with `--grad-accum 4`.
* Router training: `train_zooter` on 10,000 queries with their embeddings given (the inner-CV
  grid of linear heads). Target: under 60 s.
"""

from __future__ import annotations

import argparse
import gc
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchlib.bench import command_line, machine, publish
from rewardroute.data.ensure import ensure_built
from rewardroute.data.readers import read_pairs
from rewardroute.data.schemas import render_prompt

REPO = Path(__file__).resolve().parents[1]


def _pairs(data: Path, n: int) -> list:
    from rewardroute.data.sampling import cap_pairs

    return cap_pairs(read_pairs(data / "prefs" / "test.jsonl"), n, seed=0)


def _timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def scoring(pairs: list, batch: int) -> dict[str, Any]:
    from rewardroute.backbone import BackboneConfig
    from rewardroute.reward.arliss import ArlissConfig, ArlissRewardModel
    from rewardroute.reward.single import SingleConfig, SingleRewardModel

    prompts = [render_prompt(p.prompt) for p in pairs]
    responses = [p.chosen for p in pairs]
    domains = sorted({p.domain for p in pairs})
    out: dict[str, Any] = {"pairs": len(pairs), "batch": batch}
    bb_cfg = BackboneConfig(max_length=256)
    single = SingleRewardModel.build(SingleConfig(backbone=bb_cfg)).eval()
    enc = single.backbone.pairs.encode_pairs(prompts, responses)
    order = sorted(range(len(enc)), key=lambda i: len(enc[i].input_ids))
    batches = [single.backbone.pairs.pad([enc[i] for i in order[s:s + batch]]) for s in range(0, len(order), batch)]

    def limit() -> None:
        with torch.inference_mode():
            for b in batches:
                single.head(single.backbone(**b))

    t_limit = _timed(limit, 2)
    out["limit_pairs_per_s"] = round(len(pairs) / t_limit, 1)
    t = _timed(lambda: single.score(prompts, responses, batch_size=batch), 2)
    out["single_pairs_per_s"] = round(len(pairs) / t, 1)
    arliss = ArlissRewardModel.build(ArlissConfig(backbone=bb_cfg, domains=domains)).eval()
    t = _timed(lambda: arliss.score(prompts, responses, batch_size=batch), 2)
    out["arliss_pairs_per_s"] = round(len(pairs) / t, 1)
    for arch in ("single", "arliss"):
        out[f"{arch}_vs_limit"] = round(out[f"{arch}_pairs_per_s"] / out["limit_pairs_per_s"], 3)
    return out


def router_latency(calls: int) -> dict[str, Any]:
    """p50/p99 of one 64-token query end to end (`probs`) and of the raw forward, in fp32 and
    with the encoder quantised to int8 (`--precision int8`)."""
    from rewardroute.router import ExpertRouter, RouterConfig
    from rewardroute.runtime import quantize_int8

    words = "Explain how a binary search works and when it fails on a sorted array of integers".split()
    query = " ".join((words * 8)[:60])  # about 64 tokens with the special tokens
    out: dict[str, Any] = {"calls": calls}
    for precision in ("fp32", "int8"):
        router = ExpertRouter.build(RouterConfig(experts=["a", "b"])).eval()
        if precision == "int8":
            quantize_int8(router.backbone)
        tokens = router.backbone.pairs.pad(router.backbone.pairs.encode_texts([query]))
        lat_e2e, lat_raw = [], []
        for _ in range(10):  # warm-up
            router.probs([query])
        for _ in range(calls):
            t0 = time.perf_counter()
            router.probs([query])
            lat_e2e.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            with torch.inference_mode():
                router.head(router.backbone(**tokens))
            lat_raw.append((time.perf_counter() - t0) * 1000)
        suffix = "" if precision == "fp32" else "_int8"
        out["tokens"] = int(tokens["input_ids"].shape[1])
        out.update({f"p50_ms{suffix}": _pct(lat_e2e, 50), f"p99_ms{suffix}": _pct(lat_e2e, 99),
                    f"raw_forward_p50_ms{suffix}": _pct(lat_raw, 50), f"raw_forward_p99_ms{suffix}": _pct(lat_raw, 99)})
    return out


def _pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(xs, q)), 2)


def int8_routing(data: Path, repeats: int, limit: int | None) -> dict[str, Any]:
    """What int8 costs in routing quality, on AlpacaEval-57, as `router route --precision int8`
    uses it: the router (kNN, k by inner CV) is fitted on fp32 training embeddings and asked with
    int8 query embeddings. Reported: the cosine of each query's int8 embedding to its fp32 one, and
    on repeated 5-fold CV the gap recovered when asked with fp32 or int8 queries, the paired
    difference, and how often the two pick the same model."""
    from rewardroute.data.readers import read_routing
    from rewardroute.eval.folds import fold_stats, paired_diff
    from rewardroute.eval.routing_metrics import gap_recovered
    from rewardroute.router import ExpertRouter, RouterConfig
    from rewardroute.runtime import quantize_int8
    from rewardroute.zooter.baselines import best_single_index, knn_choice, select_knn_k
    from rewardroute.zooter.labels import score_table

    table = score_table(read_routing(data / "routing" / "alpaca_eval_57.jsonl")[:limit])
    scores, queries = np.asarray(table.scores), [render_prompt(r.query) for r in table.records]
    router = ExpertRouter.build(RouterConfig(experts=["a", "b"])).eval()
    with torch.inference_mode():
        emb = {"fp32": router.embed(queries).float().numpy()}
        quantize_int8(router.backbone)
        emb["int8"] = router.embed(queries).float().numpy()
    a, b = emb["fp32"], emb["int8"]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    gaps: dict[str, list[float | None]] = {"fp32": [], "int8": []}
    same = []
    for rep in range(repeats):
        for fold in np.array_split(np.random.default_rng(rep).permutation(len(scores)), 5):
            tr = np.setdiff1d(np.arange(len(scores)), fold)
            best = scores[fold][:, best_single_index(scores[tr])].mean()
            picks, k = {}, select_knn_k(a[tr], scores[tr])
            for name, e in emb.items():  # the memory is fp32 as trained; only the queries change
                picks[name] = knn_choice(a[tr], scores[tr], e[fold], k)
                gaps[name].append(gap_recovered(scores[fold][np.arange(len(fold)), picks[name]].mean(), best,
                                                scores[fold].max(axis=1).mean()))
            same.append(float((picks["fp32"] == picks["int8"]).mean()))
    return {"queries": len(queries), "models": scores.shape[1], "folds": len(same),
            "cosine_min": round(float(cos.min()), 4), "cosine_mean": round(float(cos.mean()), 4),
            "same_pick": round(float(np.mean(same)), 3),
            "gap_fp32": fold_stats(gaps["fp32"]), "gap_int8": fold_stats(gaps["int8"]),
            "gap_int8_minus_fp32": paired_diff(gaps["int8"], gaps["fp32"])}


def training(pairs: list, steps: int, data: Path) -> dict[str, Any]:
    """Pairs/s of a few optimizer steps per architecture (1 process), and the peak memory of one
    step on the longest batch, plain and with gradient accumulation (in fresh processes)."""
    from rewardroute.backbone import BackboneConfig
    from rewardroute.reward.arliss import ArlissConfig, ArlissRewardModel
    from rewardroute.reward.reward_config import RewardTrainingConfig
    from rewardroute.reward.single import SingleConfig, SingleRewardModel

    out: dict[str, Any] = {}
    domains = sorted({p.domain for p in pairs})
    n = steps * 16
    for arch, build in (("single", lambda: SingleRewardModel.build(SingleConfig(backbone=BackboneConfig(max_length=256)))),
                        ("single_freeze4", lambda: SingleRewardModel.build(SingleConfig(
                            backbone=BackboneConfig(max_length=256, freeze_layers=4)))),
                        ("arliss", lambda: ArlissRewardModel.build(ArlissConfig(backbone=BackboneConfig(max_length=256),
                                                                                domains=domains)))):
        model = build()
        args = RewardTrainingConfig(epochs=1, batch_size=16, device="cpu", resume=False)
        sample = pairs[:n]
        if arch == "arliss":  # one reward adapter: the part that trains on pairs
            d = domains[0]
            sample = [p for p in pairs if p.domain == d][:n]
            t = _timed(lambda: model.fit_expert(d, sample, [], args, _no_parts()))
        else:
            t = _timed(lambda: model.fit(sample, [], args))
        out[f"{arch}_train_pairs_per_s"] = round(len(sample) / t, 2)
        del model
        gc.collect()
    for variant in ("accum1", "accum4", "attn0", "freeze4"):
        proc = subprocess.run([sys.executable, __file__, "--peak-step", variant, "--data", str(data)],
                              capture_output=True, text=True)
        out[f"single_step_peak_rss_mb_{variant}"] = float(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    return out


def training_processes(pairs: list, n: int, archs: tuple[str, ...]) -> dict[str, Any]:
    """`rm train` on `n` pairs (1 epoch, no valid set), on 1 process with 2 threads and on 2
    torchrun processes (gloo) with 1 thread each: the same 2 cores, the same global batch.
    Pairs/s count the whole command (start-up and saving included), so read the ratio."""
    import json
    import os
    import tempfile

    from rewardroute.io import write_jsonl_atomic

    out: dict[str, Any] = {"pairs": n}
    with tempfile.TemporaryDirectory() as tmp:
        train = Path(tmp) / "train.jsonl"
        write_jsonl_atomic(train, pairs[:n])
        for arch in archs:
            for procs, threads in ((1, "2"), (2, "1")):
                env = dict(os.environ, OMP_NUM_THREADS=threads, TOKENIZERS_PARALLELISM="false")
                launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
                          if procs == 2 else [sys.executable])
                dest = Path(tmp) / f"{arch}-{procs}"
                cmd = [*launch, "-m", "rewardroute", "rm", "train", "--arch", arch, "--train", str(train),
                       "--epochs", "1", "--max-length", "128", "--out", str(dest), "--set", "training.batch_size=16",
                       "--set", "training.device=cpu"]
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                seconds = time.perf_counter() - t0
                key = f"{arch}_{procs}proc"
                if proc.returncode != 0:
                    out[key] = {"error": proc.stderr[-500:]}
                    continue
                meta = json.loads((dest / "config.json").read_text())
                out[key] = {"seconds": round(seconds, 1), "pairs_per_s": round(n / seconds, 2),
                            "fit_seconds": (meta.get("extra", {}).get("training") or {}).get("seconds")}
            one, two = out.get(f"{arch}_1proc", {}), out.get(f"{arch}_2proc", {})
            if "seconds" in one and "seconds" in two:
                out[f"{arch}_speedup"] = round(one["seconds"] / two["seconds"], 2)
    return out


def _no_parts():
    from rewardroute.reward.routed import Parts

    return Parts(None)


def peak_step(variant: str, data: Path) -> None:
    """One training step of `single` on the 16 test pairs with the longest answers at 256 tokens;
    prints the growth of peak RSS over the loaded model (MB). Variants: `accum1` (plain),
    `accum4` (`--grad-accum 4`), `attn0` (attention dropout off), `freeze4` (lowest 4 layers frozen)."""
    from rewardroute.backbone import BackboneConfig
    from rewardroute.reward.single import SingleConfig, SingleRewardModel

    accum = 4 if variant == "accum4" else 1
    pairs = sorted(read_pairs(data / "prefs" / "test.jsonl"), key=lambda p: -len(p.chosen))[:16]
    backbone = BackboneConfig(max_length=256, attention_dropout=0.0 if variant == "attn0" else None,
                              freeze_layers=4 if variant == "freeze4" else 0)
    model = SingleRewardModel.build(SingleConfig(backbone=backbone)).train()
    base = _hwm_mb()
    size = len(pairs) // accum
    for i in range(accum):
        chunk = pairs[i * size:(i + 1) * size]
        loss, _ = model.pair_loss([render_prompt(p.prompt) for p in chunk], [p.chosen for p in chunk],
                                  [p.rejected for p in chunk])
        (loss / accum).backward()
    print(round(_hwm_mb() - base, 1))


def _hwm_mb() -> float:
    """Peak RSS of this process image (VmHWM: unlike getrusage's maxrss it is not inherited
    from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def router_training(n: int) -> dict[str, Any]:
    from rewardroute.data.schemas import RoutingRecord
    from rewardroute.zooter.labels import score_table
    from rewardroute.zooter.train import train_zooter
    from rewardroute.zooter.zooter_config import ZooterConfig

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(n, 384)).astype(np.float32)
    w = rng.normal(size=384)
    rows = [RoutingRecord(id=str(i), query=f"q{i}", scores={"strong": float(emb[i] @ w > 0), "weak": 0.5})
            for i in range(n)]
    t0 = time.perf_counter()
    _, report = train_zooter(score_table(rows), ZooterConfig(), embeddings=emb)
    return {"queries": n, "seconds": round(time.perf_counter() - t0, 1), "head_l2": report.head_l2,
            "knn_weight": report.knn_weight, "grid_points": len(report.selection)}


def markdown(res: dict[str, Any]) -> str:
    s, r, t, z = res["scoring"], res["router"], res["training"], res["router_training"]
    lines = [
        "## hot_paths: scoring, routing and training speed beside their limits",
        "",
        f"`{res['command']}` ({res['machine']['cpus']} CPUs, torch {res['machine']['torch']}, {res['machine']['date']}).",
        "",
        "| path | measured | limit or target |",
        "|---|---|---|",
        f"| scoring, raw backbone forward ({s['pairs']} pairs, batch {s['batch']}, length-sorted) | "
        f"{s['limit_pairs_per_s']} pairs/s | the limit |",
        f"| `single` end-to-end `score` | {s['single_pairs_per_s']} pairs/s ({s['single_vs_limit']:.2f}x) | >= 0.85x |",
        f"| `arliss` end-to-end `score` (routes each prompt too) | {s['arliss_pairs_per_s']} pairs/s "
        f"({s['arliss_vs_limit']:.2f}x) | >= 0.85x |",
        f"| router, one {r['tokens']}-token query | p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms | p50 < 10 ms |",
        f"| raw forward of that query | p50 {r['raw_forward_p50_ms']} ms, p99 {r['raw_forward_p99_ms']} ms | |",
        f"| router with `--precision int8` (encoder quantised), the same query | p50 {r['p50_ms_int8']} ms, "
        f"p99 {r['p99_ms_int8']} ms (raw forward p50 {r['raw_forward_p50_ms_int8']} ms) | p50 < 10 ms |",
        f"| training `single` (full fine-tuning, 1 process) | {t['single_train_pairs_per_s']} pairs/s | |",
        f"| training `single`, lowest 4 of 6 layers frozen (`backbone.freeze_layers=4`) | "
        f"{t.get('single_freeze4_train_pairs_per_s')} pairs/s | |",
        f"| training `arliss` (one LoRA adapter, 1 process) | {t['arliss_train_pairs_per_s']} pairs/s | |",
        f"| peak memory growth of one `single` step, 16 longest pairs at 256 tokens | "
        f"{t['single_step_peak_rss_mb_accum1']} MB; `--grad-accum 4`: {t['single_step_peak_rss_mb_accum4']} MB; "
        f"attention dropout off (`backbone.attention_dropout=0`): {t.get('single_step_peak_rss_mb_attn0')} MB; "
        f"lowest 4 layers frozen: {t.get('single_step_peak_rss_mb_freeze4')} MB | |",
        f"| `router train`, {z['queries']:,} queries, embeddings given ({z['grid_points']} inner-CV points) | "
        f"{z['seconds']} s | < 60 s |",
        "",
        "Each figure is one run on a shared machine (best of 2 for scoring): read the ratios, not the third digit.",
        "",
        *int8_lines(res["int8_routing"]),
        "",
        *process_lines(res["training_processes"]),
    ]
    return "\n".join(lines) + "\n"


def status_rows(res: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """README rows: each speed target beside what was measured (one run each)."""
    if res.get("quick"):
        return []
    s, r, z = res["scoring"], res["router"], res["router_training"]
    met = lambda ok: "target met" if ok else "target NOT met"  # noqa: E731
    return [(f"`{a}` end-to-end scoring against the raw backbone forward", f"{s[f'{a}_vs_limit']:.2f}x",
             ">= 0.85x", f"one run; {met(s[f'{a}_vs_limit'] >= 0.85)}") for a in ("single", "arliss")] + [
        ("router p50, one 64-token query, fp32 / `--precision int8`", f"{r['p50_ms']} / {r['p50_ms_int8']} ms",
         "< 10 ms", f"one run of {r['calls']} calls; fp32 {met(r['p50_ms'] < 10)}, int8 {met(r['p50_ms_int8'] < 10)}"),
        (f"`router train` on {z['queries']:,} queries, embeddings given", f"{z['seconds']} s", "< 60 s",
         f"one run; {met(z['seconds'] < 60)}")]


def int8_lines(q: dict[str, Any]) -> list[str]:
    from rewardroute.eval.folds import fmt, verdict

    return [f"**What int8 costs in routing** (AlpacaEval-57, {q['queries']} queries, {q['models']} models; a kNN "
            f"router, k by inner CV, fitted on fp32 training embeddings and asked with fp32 or int8 queries, "
            f"{q['folds']} folds of repeated 5-fold CV): int8 embeddings "
            f"have cosine {q['cosine_mean']} to fp32 on average (min {q['cosine_min']}); the two pick the same "
            f"model for {q['same_pick']:.0%} of test queries. Gap recovered: fp32 {fmt(q['gap_fp32'])}, int8 "
            f"{fmt(q['gap_int8'])}; int8 minus fp32 {fmt(q['gap_int8_minus_fp32'])}: "
            f"{verdict(q['gap_int8_minus_fp32'], 'int8', 'fp32')}."]


def process_lines(t: dict[str, Any]) -> list[str]:
    archs = [k[:-len("_1proc")] for k in t if k.endswith("_1proc")]
    lines = [f"**Training on 1 and 2 processes** (`rm train`, {t['pairs']} pairs, 1 epoch, batch 16, 128 tokens; "
             "1 process with 2 threads against 2 torchrun processes with 1 thread each on the same 2 cores; whole "
             "command, start-up included):", "",
             "| architecture | 1 process: s (pairs/s) | 2 processes: s (pairs/s) | speed-up |", "|---|---|---|---|"]
    for a in archs:
        cells = []
        for procs in (1, 2):
            c = t[f"{a}_{procs}proc"]
            cells.append(f"{c['seconds']} ({c['pairs_per_s']})" if "seconds" in c else f"failed: {c['error'][-120:]}")
        lines.append(f"| {a} | {cells[0]} | {cells[1]} | {t.get(f'{a}_speedup', '-')} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", type=Path, default=REPO / "data")
    ap.add_argument("--peak-step", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--no-results-md", action="store_true")
    args = ap.parse_args()
    if args.peak_step is not None:
        peak_step(args.peak_step, args.data)
        return
    torch.manual_seed(0)
    data = ensure_built(args.data)
    pairs = _pairs(data, 32 if args.quick else 256)
    res: dict[str, Any] = {"benchmark": "hot_paths", "command": command_line(), "machine": machine(),
                           "quick": args.quick}
    res["scoring"] = scoring(pairs, 16 if args.quick else 32)
    res["router"] = router_latency(20 if args.quick else 200)
    res["int8_routing"] = int8_routing(data, 1 if args.quick else 3, 100 if args.quick else None)
    res["training"] = training(pairs, 1 if args.quick else 3, data)
    res["training_processes"] = training_processes(pairs, 32 if args.quick else 128,
                                                   ("single",) if args.quick else ("single", "more", "rodos", "arliss"))
    res["router_training"] = router_training(500 if args.quick else 10_000)
    name = "hot_paths_quick" if args.quick else "hot_paths"
    publish(name, res, None if args.quick or args.no_results_md else markdown(res))


if __name__ == "__main__":
    main()
