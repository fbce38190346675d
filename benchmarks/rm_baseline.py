"""Baseline reward models on the five real domains.

Trains (1) one `single` reward model on all domains mixed, the paper's baseline, and (2) one
`single` model per domain, with the same per-domain pair budget, once per training seed
(--seeds); evaluates both on the test split of the group-aware split beside three baselines
fitted on the training split (longer wins, the per-domain length rule, the surface-feature
regression). Every accuracy has a 95% prompt-clustered bootstrap interval pooled over seeds, and
each model its paired difference to the best baseline of each domain (and per-domain models to
the mixed one); "X beats Y" only where that interval excludes 0. Prints one JSON object, saves
it to benchmarks/results/rm_baseline.json, writes a markdown table into benchmarks/RESULTS.md
and a PNG chart.

    python benchmarks/rm_baseline.py                 # the full run, 3 seeds (about 2-3 h on 2 cores)
    python benchmarks/rm_baseline.py --seeds 0       # one seed (about 40-60 min)
    python benchmarks/rm_baseline.py --quick         # a smoke run in a minute or two
    python benchmarks/rm_baseline.py --split valid   # tuning: evaluate on the valid split
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rewardroute.backbone import BackboneConfig
from benchlib.bench import command_line, machine, peak_rss_mb, publish, results_dir
from rewardroute.data import read_pairs
from rewardroute.data.ensure import ensure_built
from rewardroute.eval.baselines import fit_baselines
from rewardroute.eval.intervals import BootstrapConfig
from rewardroute.eval.pairwise import compare_systems, evaluate_reward_model
from rewardroute.eval.plots import accuracy_bars
from rewardroute.eval.report import comparison_markdown
from rewardroute.reward.reward_config import RewardTrainingConfig
from rewardroute.data.sampling import cap_per_domain
from rewardroute.reward.reward_trainer import build_for_training
from rewardroute.reward.single import SingleConfig, SingleRewardModel


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data"), help="built data folder (built if missing)")
    ap.add_argument("--backbone", default="all-MiniLM-L6-v2")
    ap.add_argument("--train-per-domain", type=int, default=400, help="cap on training pairs per domain")
    ap.add_argument("--eval-per-domain", type=int, default=200, help="cap on evaluated pairs per domain")
    ap.add_argument("--valid-per-domain", type=int, default=60, help="valid pairs scored after each epoch")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--head-lr", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--seeds", default=None, help="training seeds, comma list (default 0,1,2; --quick: 0)")
    ap.add_argument("--sample-seed", type=int, default=0, help="seed of the pair sampling (the same for every run)")
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the intervals")
    ap.add_argument("--split", default="test", choices=["test", "valid"], help="where to report accuracy")
    ap.add_argument("--no-per-domain", action="store_true", help="skip the per-domain models")
    ap.add_argument("--quick", action="store_true", help="tiny budget: a smoke run")
    ap.add_argument("--out", default="rm_baseline", help="results name (json/png) and RESULTS.md section")
    ap.add_argument("--no-results-md", action="store_true", help="do not touch benchmarks/RESULTS.md")
    args = ap.parse_args()
    if args.quick:
        args.train_per_domain, args.eval_per_domain, args.valid_per_domain = 8, 8, 4
        args.epochs, args.max_length = 1, 64
        args.out = args.out + "_quick"  # never overwrite the real figures
    args.seed_list = [int(x) for x in (args.seeds or ("0" if args.quick else "0,1,2")).split(",") if x.strip()]
    return args


def train_eval(train, valid, test, args, label: str, seed: int) -> dict:
    cfg = SingleConfig(backbone=BackboneConfig(name_or_path=args.backbone, max_length=args.max_length),
                       domains=sorted({p.domain for p in train}))
    model = build_for_training(SingleRewardModel, cfg, seed)
    targs = RewardTrainingConfig(epochs=args.epochs, lr=args.lr, head_lr=args.head_lr,
                                 batch_size=args.batch_size, seed=seed)
    t0 = time.perf_counter()
    fit = model.fit(train, valid, targs)
    train_s = time.perf_counter() - t0
    result = evaluate_reward_model(model, test, keep_correct=True)
    return {"label": label, "seed": seed, "accuracy": result["accuracy"],
            "pairs_per_second": result["pairs_per_second"], "train_seconds": train_s, "train_pairs": len(train),
            "best_epoch": fit.best_epoch, "valid_history": [h["valid"] for h in fit.history],
            "params": result["params"], "correct": result["correct"]}


def per_domain_runs(train_by, valid_by, test_by, test, domains, args, seed: int) -> tuple[np.ndarray, dict]:
    """One `single` model per domain, each scored on its domain's test pairs: per-pair correctness
    over the whole test set (in its order) and each model's record."""
    correct = np.zeros(len(test))
    records = {}
    for d in domains:
        r = train_eval(train_by[d], valid_by.get(d, []), test_by[d], args, f"single ({d} only)", seed)
        correct[[i for i, p in enumerate(test) if p.domain == d]] = r.pop("correct")
        records[d] = r
    return correct, records


def status_rows(out: dict) -> list[tuple[str, str, str, str]]:
    """README rows: per-domain single models against the mixed one, with the paired interval."""
    if out.get("name", "rm_baseline") != "rm_baseline":
        return []
    models = out["comparison"]["models"]
    per = models.get("single (per domain)")
    if per is None:
        return []
    acc, d = per["accuracy"]["average"], per["vs_single (mixed)"]["average"]
    mixed = models["single (mixed)"]["accuracy"]["average"]
    return [(f"one `single` per domain vs one mixed `single`, domain average ({len(out['seeds'])} seeds)",
             f"{acc['estimate']:.3f} [{acc['low']:.3f}, {acc['high']:.3f}]",
             f"mixed {mixed['estimate']:.3f} [{mixed['low']:.3f}, {mixed['high']:.3f}]",
             f"{d['estimate']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]: " + (
                 "per-domain models beat the mixed one" if d["low"] > 0 else
                 "the mixed model beats per-domain ones" if d["high"] < 0 else "no difference shown"))]


def markdown(out: dict) -> str:
    """The RESULTS.md section, from the JSON result alone (`publish.py` regenerates it)."""
    st, seeds = out["settings"], out["seeds"]
    n_eval = sum(out["capped"]["eval"].values())
    train_min = np.mean([r["train_seconds"] for r in out["mixed"]]) / 60
    train_pairs = out["baselines_fitted"].get("train_pairs", {}).get("*", "all")
    return (f"## Baseline reward model (`{out.get('name', 'rm_baseline')}`)\n\n"
            f"`{out['command']}` — backbone {out['backbone']}, {st['max_length']} tokens, {st['epochs']} epochs, "
            f"lr {st['lr']}, up to {st['train_per_domain']} train pairs per domain, seeds "
            f"{', '.join(map(str, seeds))}; {out['split']} split, up to {st['eval_per_domain']} pairs per "
            f"domain ({n_eval} in all). Baselines fitted on the {train_pairs} pairs of the train split. "
            f"Finished in {out['total_seconds'] / 60:.1f} min on {out['machine']['cpus']} CPUs.\n\n"
            + comparison_markdown(out["comparison"])
            + f"\nMixed model: trained {train_min:.1f} min per seed.\n\n"
            + (f"![accuracy]({Path('results') / out['png']})\n" if out.get("png") else ""))


def main() -> None:
    args = parse()
    t_start = time.perf_counter()
    data = ensure_built(args.data)
    train_all = read_pairs(data / "prefs" / "train.jsonl")
    train_by = cap_per_domain(train_all, args.train_per_domain, args.sample_seed)
    valid_by = cap_per_domain(read_pairs(data / "prefs" / "valid.jsonl"), args.valid_per_domain, args.sample_seed)
    test_by = cap_per_domain(read_pairs(data / "prefs" / f"{args.split}.jsonl"), args.eval_per_domain,
                             args.sample_seed)
    domains = sorted(train_by)
    flat = lambda by: [p for d in domains for p in by.get(d, [])]  # noqa: E731
    test = flat(test_by)

    mixed_runs, per_domain_records = [], {}
    correct: dict[str, list[np.ndarray]] = {"single (mixed)": []}
    for seed in args.seed_list:
        run = train_eval(flat(train_by), flat(valid_by), test, args, "single (mixed)", seed)
        correct["single (mixed)"].append(run.pop("correct"))
        mixed_runs.append(run)
        if not args.no_per_domain:
            c, records = per_domain_runs(train_by, valid_by, test_by, test, domains, args, seed)
            correct.setdefault("single (per domain)", []).append(c)
            per_domain_records[str(seed)] = records
    # the baselines see the whole train split (never valid or test): the strongest fair version
    fitted = fit_baselines([p for p in train_all if p.domain in domains])
    comparison = compare_systems(test, correct, fitted.correct(test), reference="single (mixed)",
                                 config=BootstrapConfig(resamples=args.bootstrap))
    rows = {name: {k: v["estimate"] for k, v in acc.items()} for name, acc in
            [*((n, r["accuracy"]) for n, r in comparison["models"].items()), *comparison["baselines"].items()]}
    errors = {name: {k: (v["low"], v["high"]) for k, v in acc.items()} for name, acc in
              [*((n, r["accuracy"]) for n, r in comparison["models"].items()), *comparison["baselines"].items()]}
    out = {
        "benchmark": "rm_baseline", "name": args.out, "split": args.split, "backbone": args.backbone, "seeds": args.seed_list,
        "settings": {k: getattr(args, k) for k in ("train_per_domain", "eval_per_domain", "valid_per_domain",
                                                  "epochs", "lr", "head_lr", "batch_size", "max_length",
                                                  "sample_seed", "bootstrap")},
        "capped": {"train": {d: len(v) for d, v in train_by.items()}, "eval": {d: len(v) for d, v in test_by.items()},
                   "note": f"pairs capped at {args.train_per_domain} train / {args.eval_per_domain} eval per domain"},
        "accuracy": rows, "comparison": comparison, "baselines_fitted": fitted.describe(),
        "mixed": mixed_runs, "per_domain": per_domain_records,
        "claims": {name: r["vs_best_baseline"]["average"]["claim"] for name, r in comparison["models"].items()},
        "peak_rss_mb": peak_rss_mb(), "total_seconds": time.perf_counter() - t_start,
        "command": command_line(), "machine": machine(),
    }
    png = accuracy_bars(rows, results_dir() / f"{args.out}.png", title=f"Pairwise accuracy ({args.split})",
                        intervals=errors)
    out["png"] = png.name
    md = None if args.no_results_md or args.quick else markdown(out)
    publish(args.out, out, md)


if __name__ == "__main__":
    main()
