"""Baseline reward models on the five real domains.

Trains (1) one `single` reward model on all domains mixed, the paper's baseline, and (2) one
`single` model per domain, with the same per-domain pair budget; evaluates both on the test
split beside the zero-training "longer response wins" heuristic. Prints one JSON object, saves
it to benchmarks/results/rm_baseline.json, writes a markdown table into benchmarks/RESULTS.md
and a PNG chart.

    python benchmarks/rm_baseline.py                 # the full run (about 40-60 min on 2 cores)
    python benchmarks/rm_baseline.py --quick         # a smoke run in a minute or two
    python benchmarks/rm_baseline.py --split valid   # tuning: evaluate on the valid split
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from rewardroute.backbone import BackboneConfig
from rewardroute.bench import command_line, machine, peak_rss_mb, publish, results_dir
from rewardroute.data import read_pairs
from rewardroute.data.ensure import ensure_built
from rewardroute.eval.pairwise import evaluate_reward_model, length_baseline, macro_average
from rewardroute.eval.plots import accuracy_bars
from rewardroute.eval.report import markdown_table
from rewardroute.reward.reward_config import RewardTrainingConfig
from rewardroute.reward.reward_trainer import cap_per_domain
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
    ap.add_argument("--seed", type=int, default=0)
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
    return args


def train_eval(train, valid, test, args, label: str) -> dict:
    cfg = SingleConfig(backbone=BackboneConfig(name_or_path=args.backbone, max_length=args.max_length),
                       domains=sorted({p.domain for p in train}))
    model = SingleRewardModel.build(cfg)
    targs = RewardTrainingConfig(epochs=args.epochs, lr=args.lr, head_lr=args.head_lr,
                                 batch_size=args.batch_size, seed=args.seed)
    t0 = time.perf_counter()
    fit = model.fit(train, valid, targs)
    train_s = time.perf_counter() - t0
    result = evaluate_reward_model(model, test)
    return {"label": label, "accuracy": result["accuracy"], "pairs_per_second": result["pairs_per_second"],
            "train_seconds": train_s, "train_pairs": len(train), "best_epoch": fit.best_epoch,
            "valid_history": [h["valid"] for h in fit.history], "params": result["params"]}


def main() -> None:
    args = parse()
    torch.manual_seed(args.seed)
    t_start = time.perf_counter()
    data = ensure_built(args.data)
    train_by = cap_per_domain(read_pairs(data / "prefs" / "train.jsonl"), args.train_per_domain, args.seed)
    valid_by = cap_per_domain(read_pairs(data / "prefs" / "valid.jsonl"), args.valid_per_domain, args.seed)
    test_by = cap_per_domain(read_pairs(data / "prefs" / f"{args.split}.jsonl"), args.eval_per_domain, args.seed)
    domains = sorted(train_by)
    flat = lambda by: [p for d in domains for p in by.get(d, [])]  # noqa: E731
    test = flat(test_by)

    mixed = train_eval(flat(train_by), flat(valid_by), test, args, "single (mixed)")
    per_domain: dict[str, dict] = {}
    if not args.no_per_domain:
        for d in domains:
            per_domain[d] = train_eval(train_by[d], valid_by.get(d, []), test_by[d], args, f"single ({d} only)")
    length = length_baseline(test)
    rows = {"single (mixed)": dict(mixed["accuracy"]), "longer response wins": dict(length)}
    if per_domain:
        pd = {d: r["accuracy"][d] for d, r in per_domain.items()}
        n_by = {d: len(test_by[d]) for d in domains}
        pd["overall"] = sum(pd[d] * n_by[d] for d in domains) / sum(n_by.values())
        rows["single (per domain)"] = pd
    for r in rows.values():
        r["average"] = macro_average({k: v for k, v in r.items() if k != "average"})

    loses = {d: round(length[d] - mixed["accuracy"][d], 3) for d in domains if length[d] > mixed["accuracy"][d]}
    out = {
        "benchmark": "rm_baseline", "split": args.split, "backbone": args.backbone,
        "settings": {k: getattr(args, k) for k in ("train_per_domain", "eval_per_domain", "valid_per_domain",
                                                  "epochs", "lr", "head_lr", "batch_size", "max_length", "seed")},
        "capped": {"train": {d: len(v) for d, v in train_by.items()}, "eval": {d: len(v) for d, v in test_by.items()},
                   "note": f"pairs capped at {args.train_per_domain} train / {args.eval_per_domain} eval per domain"},
        "accuracy": rows, "mixed": mixed, "per_domain": per_domain,
        "baseline_loses_to_length": loses,
        "peak_rss_mb": peak_rss_mb(), "total_seconds": time.perf_counter() - t_start,
        "command": command_line(), "machine": machine(),
    }
    png = accuracy_bars(rows, results_dir() / f"{args.out}.png", title=f"Pairwise accuracy ({args.split})")
    md = None
    if not args.no_results_md and not args.quick:
        cols = [*domains, "average", "overall"]
        md = (f"## Baseline reward model (`{args.out}`)\n\n"
              f"`{out['command']}` — backbone {args.backbone}, {args.max_length} tokens, {args.epochs} epochs, "
              f"lr {args.lr}, up to {args.train_per_domain} train pairs per domain; {args.split} split, up to "
              f"{args.eval_per_domain} pairs per domain ({sum(len(v) for v in test_by.values())} in all). "
              f"Finished in {out['total_seconds'] / 60:.1f} min on {machine()['cpus']} CPUs.\n\n"
              + markdown_table(rows, columns=cols)
              + f"\nMixed model: trained {mixed['train_seconds'] / 60:.1f} min, scores "
              f"{mixed['pairs_per_second']:.1f} pairs/s. Where the length heuristic still wins: "
              f"{', '.join(f'{d} (by {v:.3f})' for d, v in loses.items()) or 'nowhere'}.\n\n![accuracy]({Path('results') / png.name})\n")
    publish(args.out, out, md)


if __name__ == "__main__":
    main()
