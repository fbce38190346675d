"""Router-based reward models against one mixed model, on the five real domains.

Trains `single` (all domains mixed, the baseline), `more`, `rodos` and `arliss` on the same
built (group-aware) splits with the same pair budget, once per training seed (--seeds, 3 by
default), on each backbone (MiniLM and SmolLM2-135M). Reports per architecture the per-domain and
domain-average accuracy, averaged over seeds, with 95% prompt-clustered bootstrap intervals pooled
over seeds; beside them the three baselines fitted on the training split (longer wins, the
per-domain length rule, the surface-feature regression) and the paired difference to the best
baseline of each domain and to single, with a claim only where that interval excludes 0. Also
router accuracy (and accuracy with oracle routing), total parameters and parameters loaded for
inference, scoring throughput on a mixed-domain stream, peak RSS and training time. Prints one
JSON object, saves it to benchmarks/results/rm_domains.json, writes a markdown table between
the `rm_domains` markers of benchmarks/RESULTS.md and a PNG (accuracy against parameters).

    python benchmarks/rm_domains.py --backbones minilm   # MiniLM, 3 seeds x 4 archs: ~55-65 min on 2 free cores
    python benchmarks/rm_domains.py                  # both backbones
    python benchmarks/rm_domains.py --quick          # a smoke run (MiniLM, a few pairs, one seed)
    python benchmarks/rm_domains.py --split valid --backbones minilm   # tuning

Every (backbone, architecture) trains and is evaluated in its own process, so its peak RSS is
its own; finished parts are kept under --work and reused when the run is started again only if
their key matches: the settings, the seed, a hash of the data files and a hash of the code.
Throughput is measured for all architectures of a backbone in one process, chunk by chunk in
rotating order, on --threads threads (default 1: this machine is shared, and one thread gives
stable, comparable timings).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# name -> (alias given to BackboneConfig, budget). The SmolLM2 budget is smaller: a full
# fine-tuning step costs ~6x MiniLM's, and the whole run must fit in two hours on 2 CPUs.
BACKBONES: dict[str, dict[str, Any]] = {
    # 128 tokens (was 192): three seeds of four architectures must fit in about an hour on 2 CPUs.
    # A training step at 128 tokens cost 0.52x one at 192 (same pairs, back to back); the
    # one-seed run at 192 took ~30 min for MiniLM, so three seeds at 128 take ~55-65 min.
    "minilm": {"name": "all-MiniLM-L6-v2", "train_per_domain": 160, "valid_per_domain": 30,
               "eval_per_domain": 80, "epochs": 2, "max_length": 128, "stream_pairs": 96},
    "smollm2": {"name": "smollm2-135m", "train_per_domain": 40, "valid_per_domain": 12,
                "eval_per_domain": 60, "epochs": 2, "max_length": 128, "stream_pairs": 48},
}
QUICK = {"train_per_domain": 8, "valid_per_domain": 4, "eval_per_domain": 6, "epochs": 1, "max_length": 48,
         "stream_pairs": 16}
ARCHS = ("single", "more", "rodos", "arliss")
ROUTED = ("rodos", "arliss")
BUDGET_KEYS = ("train_per_domain", "valid_per_domain", "eval_per_domain", "epochs", "max_length", "stream_pairs")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data"), help="built data folder (built if missing)")
    ap.add_argument("--backbones", default="minilm,smollm2", help=f"comma list of {sorted(BACKBONES)}")
    ap.add_argument("--archs", default=",".join(ARCHS), help="comma list of architectures")
    ap.add_argument("--domains", default=None, help="comma list: only these domains (default: all built)")
    ap.add_argument("--split", default="test", choices=["test", "valid"], help="where accuracy is reported")
    for key in BUDGET_KEYS:
        ap.add_argument("--" + key.replace("_", "-"), type=int, default=None, help="override the backbone budget")
    ap.add_argument("--lr", type=float, default=1e-4, help="full fine-tuning lr (single, more, rodos)")
    ap.add_argument("--head-lr", type=float, default=1e-3, help="lr of heads and MoE gates")
    ap.add_argument("--adapter-lr", type=float, default=3e-3, help="arliss LoRA lr")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seeds", default=None, help="training seeds, comma list (default 0,1,2; --quick: 0)")
    ap.add_argument("--sample-seed", type=int, default=0, help="seed of the pair sampling (the same for every run)")
    ap.add_argument("--baselines-train-per-domain", type=int, default=None,
                    help="training pairs per domain the baselines are fitted on (default: the whole train split)")
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the intervals")
    ap.add_argument("--stream-chunk", type=int, default=32, help="pairs per request in the throughput stream")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the throughput stream")
    ap.add_argument("--quick", action="store_true", help="a smoke run: MiniLM, a few pairs per domain")
    ap.add_argument("--in-process", action="store_true", help="no child processes (RSS is then the whole run's)")
    ap.add_argument("--work", type=Path, default=None, help="checkpoints and per-part results")
    ap.add_argument("--fresh", action="store_true", help="ignore finished parts under --work")
    ap.add_argument("--out", default=None, help="results name (default rm_domains, rm_domains_quick)")
    ap.add_argument("--results-dir", type=Path, default=None, help="where the JSON and PNG go")
    ap.add_argument("--results-md", type=Path, default=None, help="markdown file to update")
    ap.add_argument("--no-results-md", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--backbone", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--arch", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--run-seed", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.seed_list = [int(x) for x in (args.seeds or ("0" if args.quick else "0,1,2")).split(",") if x.strip()]
    if not args.seed_list:
        raise SystemExit("--seeds is empty")
    if args.quick:
        args.in_process = True
        if "--backbones" not in (argv if argv is not None else sys.argv):
            args.backbones = "minilm"
    args.out = args.out or ("rm_domains_quick" if args.quick else "rm_domains")
    args.work = args.work or Path("runs") / args.out
    return args


def budget(args: argparse.Namespace, backbone: str) -> dict[str, Any]:
    if backbone not in BACKBONES:
        raise SystemExit(f"unknown backbone {backbone!r}; choose from {sorted(BACKBONES)}")
    b = dict(BACKBONES[backbone])
    if args.quick:
        b.update(QUICK)
    for key in BUDGET_KEYS:
        if getattr(args, key) is not None:
            b[key] = getattr(args, key)
    return b


# -- data ----------------------------------------------------------------------------------------

def load_splits(args: argparse.Namespace, b: dict[str, Any]):
    from rewardroute.data import read_pairs
    from rewardroute.data.ensure import ensure_built
    from rewardroute.data.sampling import cap_per_domain

    data = ensure_built(args.data)
    keep = set(args.domains.split(",")) if args.domains else None
    flat = lambda by: [p for d in sorted(by) if keep is None or d in keep for p in by[d]]  # noqa: E731
    seed = args.sample_seed
    train = flat(cap_per_domain(read_pairs(data / "prefs" / "train.jsonl"), b["train_per_domain"], seed))
    valid = flat(cap_per_domain(read_pairs(data / "prefs" / "valid.jsonl"), b["valid_per_domain"], seed))
    test = flat(cap_per_domain(read_pairs(data / "prefs" / f"{args.split}.jsonl"), b["eval_per_domain"], seed))
    return train, valid, test


def baseline_train(args):
    """The training pairs the baselines are fitted on: the train split (never valid or test)."""
    from rewardroute.data import read_pairs
    from rewardroute.data.ensure import ensure_built
    from rewardroute.data.sampling import cap_per_domain

    keep = set(args.domains.split(",")) if args.domains else None
    by = cap_per_domain(read_pairs(ensure_built(args.data) / "prefs" / "train.jsonl"),
                        args.baselines_train_per_domain, args.sample_seed)
    return [p for d in sorted(by) if keep is None or d in keep for p in by[d]]


def data_digest(args) -> str:
    """sha256 of the built pair files: a cached part is never reused on other data."""
    from benchlib.bench import prefs_digest
    from rewardroute.data.ensure import ensure_built

    return prefs_digest(ensure_built(args.data))


def code_digest() -> str:
    from benchlib.bench import code_digest as digest

    return digest(Path(__file__))


# -- the three kinds of work, each run in its own process ----------------------------------------

def model_config(args, b: dict[str, Any], arch: str, domains: list[str]):
    from rewardroute.backbone import BackboneConfig
    from rewardroute.reward.registry import get_arch

    cfg: dict[str, Any] = {"backbone": BackboneConfig(name_or_path=b["name"], max_length=b["max_length"]),
                           "domains": domains}
    if arch == "arliss":
        cfg["adapter_lr"] = args.adapter_lr
    return get_arch(arch).config_class(**cfg)


def do_train(args, backbone: str, arch: str, seed: int) -> dict[str, Any]:
    from benchlib.bench import peak_rss_mb
    from rewardroute.reward.checkpoint import save_model
    from rewardroute.reward.registry import get_arch
    from rewardroute.reward.reward_config import RewardTrainingConfig
    from rewardroute.reward.reward_trainer import build_for_training

    b = budget(args, backbone)
    train, valid, _ = load_splits(args, b)
    cfg = model_config(args, b, arch, sorted({p.domain for p in train}))
    model = build_for_training(get_arch(arch), cfg, seed)
    targs = RewardTrainingConfig(epochs=b["epochs"], lr=args.lr, head_lr=args.head_lr, batch_size=args.batch_size,
                                 seed=seed)
    t0, c0 = time.perf_counter(), time.process_time()
    result = model.fit(train, valid, targs)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    save_model(model, ckpt_dir(args, backbone, arch, seed))
    # CPU seconds are all threads together; on a shared machine they vary less than wall time.
    return {"train_seconds": seconds, "train_cpu_seconds": cpu, "train_pairs": len(train),
            "best_valid": result.best_metric, "history": result.history, "train_peak_rss_mb": peak_rss_mb()}


def do_eval(args, backbone: str, arch: str, seed: int) -> dict[str, Any]:
    from benchlib.bench import peak_rss_mb
    from rewardroute.eval.pairwise import accuracy_by_domain, evaluate_reward_model, macro_average, pair_correct
    from rewardroute.reward.checkpoint import load_model

    b = budget(args, backbone)
    _, _, test = load_splits(args, b)
    model = load_model(ckpt_dir(args, backbone, arch, seed), expect_arch=arch)
    res = evaluate_reward_model(model, test, batch_size=64, keep_correct=True)
    out = {"accuracy": res["accuracy"], "average": macro_average(res["accuracy"]), "params": res["params"],
           "eval_pairs_per_second": res["pairs_per_second"], "ids": [p.id for p in test],
           "correct": res["correct"].tolist()}  # per pair, for the clustered and paired intervals
    for key in ("router_accuracy", "expert_load"):
        if key in res:
            out[key] = res[key]
    if arch in ROUTED:
        oracle, _, _ = pair_correct(model, test, batch_size=64, oracle_domain=True)
        out["oracle_accuracy"] = accuracy_by_domain(oracle.tolist(), [p.domain for p in test])
        out["oracle_average"] = macro_average(out["oracle_accuracy"])
        out["oracle_correct"] = oracle.tolist()
    out["inference_peak_rss_mb"] = peak_rss_mb()
    return out


def do_throughput(args, backbone: str, archs: list[str]) -> dict[str, float]:
    """Pairs/s on a stream of mixed-domain requests, all architectures interleaved."""
    import torch

    from rewardroute.reward.checkpoint import load_model

    torch.set_num_threads(args.threads)
    b = budget(args, backbone)
    _, _, test = load_splits(args, b)
    stream = list(test)
    random.Random(args.sample_seed).shuffle(stream)
    stream = stream[: b["stream_pairs"]]
    chunks = [stream[i:i + args.stream_chunk] for i in range(0, len(stream), args.stream_chunk)]
    models = {a: load_model(ckpt_dir(args, backbone, a, args.seed_list[0]), expect_arch=a) for a in archs}

    def run(model, chunk) -> None:
        model.score([p.prompt for p in chunk] * 2, [p.chosen for p in chunk] + [p.rejected for p in chunk],
                    batch_size=2 * args.stream_chunk)

    for m in models.values():  # warm-up (allocator, tokenizer caches)
        run(m, chunks[0])
    wall = {a: 0.0 for a in archs}
    cpu = {a: 0.0 for a in archs}
    for j, chunk in enumerate(chunks):
        turn = archs[j % len(archs):] + archs[: j % len(archs)]  # rotate who goes first
        for a in turn:
            t0, c0 = time.perf_counter(), time.process_time()
            run(models[a], chunk)
            wall[a] += time.perf_counter() - t0
            cpu[a] += time.process_time() - c0
    # Wall time on a shared machine includes waiting for a core; with one thread, CPU time
    # is the work itself, so ratios between architectures are taken on it.
    return {a: {"pairs_per_second": len(stream) / wall[a], "pairs_per_cpu_second": len(stream) / cpu[a]}
            for a in archs}


def ckpt_dir(args, backbone: str, arch: str, seed: int) -> Path:
    return args.work / backbone / arch / f"seed{seed}"


# -- orchestration -------------------------------------------------------------------------------

def part(args, kind: str, backbone: str, arch: str | None = None, archs: list[str] | None = None,
         seed: int | None = None) -> Any:
    """Run one piece of work (in a child process unless --in-process), caching its result under
    a key of everything that changes it: settings, seed, the data files' and the code's hashes."""
    seed = args.seed_list[0] if seed is None else seed
    cache = args.work / backbone / f"{kind}-{arch or 'all'}-seed{seed}.json"
    key = {"budget": budget(args, backbone), "split": args.split, "domains": args.domains, "archs": archs,
           "seed": seed, "data": args.data_digest, "code": args.code_digest,
           **{k: getattr(args, k) for k in ("lr", "head_lr", "adapter_lr", "batch_size", "sample_seed",
                                            "stream_chunk", "threads")}}
    if cache.exists() and not args.fresh:
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return saved["result"]
        print(f"[rm_domains] {cache.name}: made with other settings, data or code; running it again",
              file=sys.stderr)
    if args.in_process:
        result = {"train": lambda: do_train(args, backbone, arch, seed),
                  "eval": lambda: do_eval(args, backbone, arch, seed),
                  "throughput": lambda: do_throughput(args, backbone, archs)}[kind]()
    else:
        cmd = [sys.executable, os.path.abspath(__file__), *args.passthrough, "--child", kind, "--backbone", backbone,
               "--arch", arch or ",".join(archs or []), "--run-seed", str(seed)]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{kind} {backbone}/{arch or archs} failed (exit {proc.returncode})")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "result": result}))
    return result


def child(args) -> None:
    if args.child == "train":
        out = do_train(args, args.backbone, args.arch, args.run_seed)
    elif args.child == "eval":
        out = do_eval(args, args.backbone, args.arch, args.run_seed)
    else:
        out = do_throughput(args, args.backbone, args.arch.split(","))
    sys.stdout.write(json.dumps(out) + "\n")


PER_PAIR = ("ids", "correct", "oracle_correct")


def pool_seeds(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """One row per architecture from its runs: accuracies and times averaged over seeds, the
    parameters of the first; each seed's own figures under "seeds"."""
    import numpy as np

    first = next(iter(runs.values()))
    mean = lambda key: float(np.mean([r[key] for r in runs.values()]))  # noqa: E731
    row = {k: v for k, v in first.items() if k not in PER_PAIR}
    for key in ("accuracy", "oracle_accuracy"):
        if key in first:
            row[key] = {d: float(np.mean([r[key][d] for r in runs.values()])) for d in first[key]}
    for key in ("average", "oracle_average", "router_accuracy", "train_seconds", "train_cpu_seconds",
                "eval_pairs_per_second", "train_peak_rss_mb", "inference_peak_rss_mb"):
        if key in first:
            row[key] = mean(key)
    if "expert_load" in first:
        row["expert_load"] = {d: {e: float(np.mean([r["expert_load"][d][e] for r in runs.values()])) for e in load}
                              for d, load in first["expert_load"].items()}
    row["seeds"] = {str(s): {k: r[k] for k in ("average", "accuracy", "best_valid", "router_accuracy") if k in r}
                    for s, r in runs.items()}
    return row


def expert_load_markdown(arch: str, load: dict[str, dict[str, float]]) -> list[str]:
    """What the router (or MoRE's gate) learned: one row per true domain, one column per expert."""
    from rewardroute.eval.report import markdown_table

    experts = list(next(iter(load.values())))
    rows = {d: {e: f"{v:.2f}" for e, v in probs.items()} for d, probs in load.items()}
    return [f"What `{arch}` routes to (mean probability per expert, rows: the true domain of the test pair; "
            "a diagonal is domain experts, one column a collapsed gate):", "",
            markdown_table(rows, first="true domain", columns=experts)]


def run_backbone(args, backbone: str, archs: list[str]) -> dict[str, Any]:
    from rewardroute.eval.baselines import fit_baselines
    from rewardroute.eval.intervals import BootstrapConfig
    from rewardroute.eval.pairwise import compare_systems, length_baseline, macro_average

    b = budget(args, backbone)
    _, _, test = load_splits(args, b)
    ids = [p.id for p in test]
    rows: dict[str, dict[str, Any]] = {}
    correct: dict[str, list[list[float]]] = {}
    oracle: dict[str, list[list[float]]] = {}
    for arch in archs:
        t0 = time.perf_counter()
        runs = {s: {**part(args, "train", backbone, arch, seed=s), **part(args, "eval", backbone, arch, seed=s)}
                for s in args.seed_list}
        if any(r["ids"] != ids for r in runs.values()):
            raise SystemExit(f"{backbone}/{arch}: a cached evaluation is of other test pairs; rerun with --fresh")
        correct[arch] = [r["correct"] for r in runs.values()]
        if arch in ROUTED:
            oracle[f"{arch} (oracle routing)"] = [r["oracle_correct"] for r in runs.values()]
        rows[arch] = pool_seeds(runs)
        print(f"[rm_domains] {backbone}/{arch}: average {rows[arch]['average']:.3f} over seeds {args.seed_list} "
              f"({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    fitted = fit_baselines(baseline_train(args))
    comparison = compare_systems(test, correct, fitted.correct(test),
                                 reference="single" if "single" in correct else None,
                                 config=BootstrapConfig(resamples=args.bootstrap))
    oracle_cmp = compare_systems(test, oracle, fitted.correct(test),
                                 config=BootstrapConfig(resamples=args.bootstrap)) if oracle else None
    tput = part(args, "throughput", backbone, archs=archs)
    for arch in archs:
        rows[arch].update(tput[arch])
        if "single" in tput:
            rows[arch]["throughput_vs_single"] = (tput[arch]["pairs_per_cpu_second"]
                                                  / tput["single"]["pairs_per_cpu_second"])
            rows[arch]["wall_throughput_vs_single"] = (tput[arch]["pairs_per_second"]
                                                       / tput["single"]["pairs_per_second"])
    length = length_baseline(test)
    for arch, row in comparison["models"].items():
        rows[arch]["intervals"] = row
    return {"budget": b, "eval_pairs": len(test), "seeds": args.seed_list, "models": rows,
            "comparison": comparison, "oracle_comparison": oracle_cmp, "baselines_fitted": fitted.describe(),
            "longer response wins": {"accuracy": length, "average": macro_average(length)}}


def targets(res: dict[str, Any]) -> dict[str, Any]:
    m = res["models"]
    out: dict[str, Any] = {}
    if "single" in m:
        base = m["single"]["average"]
        # "met" only where the paired interval shows it: a higher mean alone is no difference shown
        out["average_at_least_single"] = {a: {"average": m[a]["average"], "single": base,
                                              "difference": m[a]["intervals"]["vs_single"]["average"],
                                              "claim": m[a]["intervals"]["vs_single"]["average"]["claim"],
                                              "met": m[a]["intervals"]["vs_single"]["average"]["low"] > 0}
                                          for a in ("more", "rodos", "arliss") if a in m}
    out["beats_best_baseline"] = {a: {"claim": r["intervals"]["vs_best_baseline"]["average"]["claim"],
                                      "met": r["intervals"]["vs_best_baseline"]["average"]["low"] > 0}
                                  for a, r in m.items()}
    if "arliss" in m and "rodos" in m:
        ratio = m["arliss"]["params"]["loaded_for_inference"] / m["rodos"]["params"]["loaded_for_inference"]
        out["arliss_params_vs_rodos"] = {"ratio": ratio, "target": 0.2, "met": ratio <= 0.2}
    if "arliss" in m and "single" in m:
        r = m["arliss"]["throughput_vs_single"]
        out["arliss_throughput_vs_single"] = {"ratio": r, "wall_ratio": m["arliss"]["wall_throughput_vs_single"],
                                              "measured_on": "process CPU time", "target": 0.8, "met": r >= 0.8}
    return out


def cost_effectiveness(results: dict[str, Any]) -> dict[str, Any]:
    """Per backbone: accuracy gained over the length heuristic against scoring and training cost."""
    out = {}
    for bb, res in results.items():
        base = _best_baseline_average(res)
        best = max(res["models"], key=lambda a: res["models"][a]["average"])
        ref = res["models"].get("single", res["models"][best])
        ms_per_pair = 1000 / ref["pairs_per_cpu_second"]
        out[bb] = {"best_arch": best, "best_average": res["models"][best]["average"],
                   "single_average": ref["average"], "gain_over_best_baseline": ref["average"] - base,
                   "scoring_ms_per_pair": ms_per_pair,
                   "training_s_per_pair_epoch": ref["train_seconds"] / max(1, ref["train_pairs"] * res["budget"]["epochs"]),
                   "gain_per_scoring_ms": (ref["average"] - base) / ms_per_pair,
                   "gain_shown": ref["intervals"]["vs_best_baseline"]["average"]["low"] > 0}
    return out


def _best_baseline_average(res: dict[str, Any]) -> float:
    """The domain average of the best baseline of each domain (what a model must beat)."""
    c = res["comparison"]
    return sum(c["baselines"][b][d]["estimate"] for d, b in c["best_baseline"].items()) / len(c["best_baseline"])


# -- reporting -----------------------------------------------------------------------------------

def status_rows(out: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The README status rows: each architecture's domain average with its interval, beside the
    best baseline of each domain, and what the paired interval of the difference says."""
    rows = []
    for bb, res in (out.get("results") or {}).items():
        if "seeds" not in res:
            continue  # measured before the group-aware split: not shown (see markdown)
        comp = res["comparison"]
        models = comp["models"]

        def fig(acc: dict) -> str:
            a = acc["average"]
            return f"{a['estimate']:.3f} [{a['low']:.3f}, {a['high']:.3f}]"

        best = {name: fig(v) for name, v in comp["baselines"].items()}
        seeds = len(res["seeds"])
        for arch, m in models.items():
            claims = [m["vs_best_baseline"]["average"]["claim"]]
            if (m.get("vs_single") or {}).get("average"):
                claims.append(m["vs_single"]["average"]["claim"])
            rows.append((f"`{arch}` domain-average test accuracy ({bb}, {res['budget']['train_per_domain']} train "
                         f"pairs/domain, {seeds} seeds)", fig(m["accuracy"]),
                         "baselines fitted on train: " + ", ".join(f"{k} {v}" for k, v in best.items()),
                         "; ".join(claims)))
    return rows


def markdown(out: dict[str, Any]) -> str:
    from rewardroute.eval.report import comparison_markdown, markdown_table

    if any("seeds" not in res for res in out.get("results", {}).values()):
        return (f"## Router-based reward models (`{out.get('name', 'rm_domains')}`)\n\n"
                "This result was measured on the earlier prompt-hash split, with one seed and without the fitted "
                "baselines or intervals; it is not shown. Re-run `python benchmarks/rm_domains.py`.\n")

    lines = [f"## Router-based reward models (`{out['name']}`)", "",
             f"`{out['command']}` on the `{out['split']}` split; finished in {out['total_seconds'] / 60:.1f} min "
             f"on {out['machine']['cpus']} shared CPUs. Same pairs and epochs for every architecture of a backbone; "
             f"full fine-tuning lr {out['settings']['lr']}, LoRA lr {out['settings']['adapter_lr']}, heads/gates "
             f"lr {out['settings']['head_lr']}. Throughput: {out['settings']['stream_chunk']}-pair requests of "
             f"mixed domains, {out['settings']['threads']} thread(s); pairs/CPU-s counts this process's CPU time "
             f"(the machine is shared, so wall time also holds waits for a core), pairs/s wall time.", ""]
    for bb, res in out["results"].items():
        b = res["budget"]
        lines += [f"### {b['name']}", "",
                  f"{b['train_per_domain']} train pairs per domain (fewer where a domain has fewer), "
                  f"{b['epochs']} epochs, {b['max_length']} tokens; {res['eval_pairs']} eval pairs; training "
                  f"seeds {', '.join(map(str, res['seeds']))} (accuracies are means over seeds, intervals pool "
                  "the bootstrap over seeds). Baselines fitted on the train split "
                  f"({res['baselines_fitted']['train_pairs']['*']} pairs).", "",
                  comparison_markdown(res["comparison"], first="architecture / baseline")]
        if res.get("oracle_comparison"):
            lines += ["With oracle routing (the true domain instead of the router):", "",
                      comparison_markdown({**res["oracle_comparison"], "baselines": {}}, first="architecture")]
        lines += ["Cost and size (means over seeds):", ""]
        rows: dict[str, dict[str, Any]] = {}
        for arch, r in res["models"].items():
            p = r["params"]
            rows[arch] = {"average": r["average"], "router acc": r.get("router_accuracy"),
                          "oracle avg": r.get("oracle_average"),
                          "params (M)": f"{p['total'] / 1e6:.1f}",
                          "loaded (M)": f"{p['loaded_for_inference'] / 1e6:.1f}",
                          "pairs/CPU-s": f"{r['pairs_per_cpu_second']:.2f}",
                          "pairs/s": f"{r['pairs_per_second']:.2f}",
                          "RSS MB": f"{r['inference_peak_rss_mb']:.0f}",
                          "train min": f"{r['train_seconds'] / 60:.1f}",
                          "train CPU-min": f"{r['train_cpu_seconds'] / 60:.1f}"}
        cols = ["average", "router acc", "oracle avg", "params (M)", "loaded (M)", "pairs/CPU-s", "pairs/s",
                "RSS MB", "train min", "train CPU-min"]
        lines.append(markdown_table(rows, first="architecture", columns=cols))
        for arch, r in res["models"].items():
            if r.get("expert_load"):
                lines += expert_load_markdown(arch, r["expert_load"])
        t = out["targets"].get(bb, {})
        notes = []
        for a, v in t.get("average_at_least_single", {}).items():
            notes.append(f"{a} above single on the average: {v['claim']} ({'met' if v['met'] else 'NOT shown'})")
        if "arliss_params_vs_rodos" in t:
            v = t["arliss_params_vs_rodos"]
            notes.append(f"arliss loads {v['ratio']:.1%} of rodos's parameters (target <= 20%: "
                         f"{'met' if v['met'] else 'NOT met'})")
        if "arliss_throughput_vs_single" in t:
            v = t["arliss_throughput_vs_single"]
            notes.append(f"arliss throughput {v['ratio']:.2f}x single per CPU-second ({v['wall_ratio']:.2f}x in wall "
                         f"time) (target >= 0.8x: {'met' if v['met'] else 'NOT met'})")
        lines += ["Targets: " + "; ".join(notes) + ".", ""] if notes else []
    lines.append(f"![accuracy against parameters](results/{out['png']})")
    return "\n".join(lines) + "\n"


def plot(out: dict[str, Any], path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = ["o", "s", "^", "D"]
    for i, (bb, res) in enumerate(out["results"].items()):
        for arch, r in res["models"].items():
            x = r["params"]["loaded_for_inference"] / 1e6
            iv = r["intervals"]["accuracy"]["average"]
            ax.errorbar(x, r["average"], yerr=[[r["average"] - iv["low"]], [iv["high"] - r["average"]]],
                        marker=markers[i % len(markers)], ms=7, capsize=3, ls="none")
            ax.annotate(f"{arch} ({bb})", (x, r["average"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.axhline(_best_baseline_average(res), ls="--", lw=0.8, color=f"C{i}",
                   label=f"best baseline per domain ({bb} eval set)")
    ax.set_xscale("log")
    ax.set_xlabel("parameters loaded for inference (millions, log scale)")
    ax.set_ylabel(f"average accuracy over domains ({out['split']})")
    ax.set_title("Reward models: accuracy against parameters")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.child:
        child(args)
        return
    from benchlib.bench import command_line, emit, machine, results_dir, update_results_section
    from rewardroute.io import write_json_atomic

    t_start = time.perf_counter()
    raw = list(sys.argv[1:] if argv is None else argv)
    args.passthrough = [a for a in raw if a != "--fresh"]
    if args.fresh:
        import shutil
        shutil.rmtree(args.work, ignore_errors=True)
    args.data_digest, args.code_digest = data_digest(args), code_digest()
    backbones = [s.strip() for s in args.backbones.split(",") if s.strip()]
    archs = [s.strip() for s in args.archs.split(",") if s.strip()]
    results = {bb: run_backbone(args, bb, archs) for bb in backbones}
    first = next(iter(results.values()))
    out = {
        "benchmark": "rm_domains", "name": args.out, "split": args.split,
        "domains": sorted(first["models"][archs[0]]["accuracy"].keys() - {"overall"}),
        "settings": {k: getattr(args, k) for k in ("lr", "head_lr", "adapter_lr", "batch_size", "seed_list",
                                                  "sample_seed", "bootstrap", "stream_chunk", "threads")},
        "data_digest": args.data_digest, "code_digest": args.code_digest,
        "results": results,
        "targets": {bb: targets(res) for bb, res in results.items()},
        "cost_effectiveness": cost_effectiveness(results),
        "total_seconds": time.perf_counter() - t_start,
        "command": command_line(), "machine": machine(),
    }
    rdir = args.results_dir or results_dir()
    out["png"] = f"{args.out}.png"
    plot(out, rdir / out["png"])
    write_json_atomic(rdir / f"{args.out}.json", out)
    if not args.no_results_md and (not args.quick or args.results_md):  # quick runs leave RESULTS.md alone
        update_results_section("rm_domains" if not args.quick else args.out, markdown(out), args.results_md)
    emit(out)


if __name__ == "__main__":
    main()
