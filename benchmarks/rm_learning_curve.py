"""Does more data still help? Test accuracy against training pairs per domain.

Trains each architecture (`--archs`, default single and arliss) on `--sizes` training pairs per
domain of the five domains (e.g. 100, 300, 1,000 and `all`: a domain with fewer gives what it
has), for each seed, and scores every model on the same test pairs beside the three baselines
fitted on the whole train split: "longer wins", the length rule with its direction fitted per
domain, and the surface-feature regression. Epochs are chosen on the valid split (the best epoch
is kept); the test split is only read to report. Intervals are prompt-clustered bootstraps
pooled over seeds; "vs best baseline" and "vs the smallest size" are paired.

    python benchmarks/rm_learning_curve.py                         # single, arliss; 100,300,1000,all; seeds 0,1,2
    python benchmarks/rm_learning_curve.py --freeze-layers 4       # the lowest 4 of 6 layers frozen (cheaper)
    python benchmarks/rm_learning_curve.py --device cuda --precision bf16   # on a GPU
    python benchmarks/rm_learning_curve.py --quick                 # a smoke run in a couple of minutes

On 2 CPUs a full run is many hours (all pairs is ~7,400 per epoch at about 3 pairs/s); on one
GPU it is minutes. Finished runs are cached in runs/rm_learning_curve/ under a key of the
settings, the data and the code, so an interrupted run resumes and never mixes results. Prints
one JSON object, saves benchmarks/results/rm_learning_curve.json and a PNG, and writes its
section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchlib import run_cache
from benchlib.bench import (add_run_args, code_digest, command_line, difference_text, interval_text, machine,
                            peak_rss_mb, prefs_digest, publish, results_dir, save_figure)

FIVE = ("chat", "code", "math", "safety", "summarization")
HUMAN = "human"
SETTINGS = ("backbone", "epochs", "lr", "head_lr", "batch_size", "max_length", "freeze_layers", "valid_per_domain",
            "eval_per_domain", "sample_seed", "device", "precision")
PRIOR = " + prior"  # a system: the model's margin plus the surface prior's log-odds
PRIOR_TRAINED = ", prior-trained"  # a model trained with RewardTrainingConfig.surface_prior


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data"), help="built five-domain data (built if missing)")
    ap.add_argument("--archs", default="single,arliss")
    ap.add_argument("--sizes", default=None, help="train pairs per domain, comma list; `all` for every pair "
                                                  "(default 100,300,1000,all; --quick: 4,12)")
    ap.add_argument("--seeds", default=None, help="training seeds (default 0,1,2; --quick: 0)")
    ap.add_argument("--backbone", default="all-MiniLM-L6-v2")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--freeze-layers", type=int, default=0, help="backbone.freeze_layers (0: train every layer)")
    ap.add_argument("--surface-prior", choices=("off", "on", "both"), default="off",
                    help="train with the surface prior added to every margin (RewardTrainingConfig.surface_prior); "
                         "both: each model twice, without and with it (paired)")
    ap.add_argument("--human-data", type=Path, default=None,
                    help="also score every model on the held-out human test (the built human domain, "
                         "`data build --domains human`; built if missing)")
    ap.add_argument("--valid-per-domain", type=int, default=60, help="valid pairs per domain for the epoch choice")
    ap.add_argument("--eval-per-domain", type=int, default=200, help="test pairs per domain")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="fp32")
    add_run_args(ap, "rm_learning_curve")
    args = ap.parse_args()
    if args.quick:
        args.valid_per_domain, args.eval_per_domain, args.epochs, args.max_length, args.bootstrap = 4, 8, 1, 48, 200
        args.out += "_quick"
        args.work = args.work.with_name(args.work.name + "_quick")
    args.arch_list = [a.strip() for a in args.archs.split(",") if a.strip()]
    args.prior_list = {"off": [False], "on": [True], "both": [False, True]}[args.surface_prior]
    args.size_list = [None if s.strip() == "all" else int(s) for s in (args.sizes or ("4,12" if args.quick else
                                                                                         "100,300,1000,all")).split(",")]
    args.seed_list = [int(s) for s in (args.seeds or ("0" if args.quick else "0,1,2")).split(",") if s.strip()]
    return args


def size_name(n: int | None) -> str:
    return "all" if n is None else str(n)


# -- data and runs ----------------------------------------------------------------------------------

def load(args) -> dict[str, Any]:
    from rewardroute.data import read_pairs
    from rewardroute.data.ensure import ensure_built
    from rewardroute.data.sampling import cap_per_domain

    data = ensure_built(args.data)
    split = lambda name: [p for p in read_pairs(data / "prefs" / f"{name}.jsonl") if p.domain in FIVE]  # noqa: E731
    train = split("train")
    flat = lambda by: [p for d in FIVE for p in by.get(d, [])]  # noqa: E731
    human = None
    if args.human_data is not None:
        folder = ensure_built(args.human_data, domains=[HUMAN])
        human = {"test": [p for p in read_pairs(folder / "prefs" / "test.jsonl") if p.domain == HUMAN],
                 "digest": prefs_digest(folder)}
    return {"human": human, "train": train, "train_by": cap_per_domain(train, None, args.sample_seed),
            "valid": flat(cap_per_domain(split("valid"), args.valid_per_domain, args.sample_seed)),
            "test": flat(cap_per_domain(split("test"), args.eval_per_domain, args.sample_seed)),
            "digest": prefs_digest(data)}


def train_and_score(arch: str, n: int | None, seed: int, prior: bool, data: dict[str, Any], args) -> dict[str, Any]:
    from rewardroute.backbone import BackboneConfig
    from rewardroute.data.sampling import cap_pairs
    from rewardroute.eval.baselines import fit_baselines
    from rewardroute.eval.pairwise import pair_margins
    from rewardroute.reward.registry import get_arch
    from rewardroute.reward.reward_config import RewardTrainingConfig
    from rewardroute.reward.reward_trainer import build_for_training
    from rewardroute.runtime import RuntimeConfig, running_on

    train = [p for d in FIVE for p in cap_pairs(data["train_by"].get(d, []), n, args.sample_seed)]
    cls = get_arch(arch)
    backbone = BackboneConfig(name_or_path=args.backbone, max_length=args.max_length, freeze_layers=args.freeze_layers)
    model = build_for_training(cls, cls.config_class(backbone=backbone, domains=list(FIVE)), seed)
    targs = RewardTrainingConfig(epochs=args.epochs, lr=args.lr, head_lr=args.head_lr, batch_size=args.batch_size,
                                 seed=seed, device=args.device, precision=args.precision, resume=False,
                                 surface_prior=prior)
    t0 = time.perf_counter()
    fit = model.fit(train, data["valid"], targs)
    seconds = time.perf_counter() - t0
    with running_on(model, RuntimeConfig(device=args.device, precision=args.precision)):
        margins = pair_margins(model, data["test"])
        human = pair_margins(model, data["human"]["test"]) if data["human"] else None
    surface = fit_baselines(train)
    return {"arch": arch, "size": size_name(n), "seed": seed, "surface_prior": prior, "train_pairs": len(train),
            "train_by_domain": {d: sum(p.domain == d for p in train) for d in FIVE},
            "train_seconds": seconds, "pairs_per_s": len(train) * args.epochs / seconds,  # validation passes included
            "best_epoch": fit.best_epoch, "best_valid": fit.best_metric, "margins": margins.tolist(),
            # the prior fitted on this run's training pairs (the one training used, with --surface-prior)
            "prior_margins": surface.surface_margin(data["test"]).tolist(),
            **({"human_margins": human.tolist(), "human_prior_margins": surface.surface_margin(data["human"]["test"]).tolist()}
               if human is not None else {})}


def with_prior(runs: dict[str, dict[str, list[dict]]]) -> dict[str, dict[str, list[dict]]]:
    """Every architecture twice: its own margins, and `<arch> + prior` (its margins plus the
    surface prior's log-odds), each with per-pair correctness."""
    from rewardroute.eval.baselines import margin_graded

    def correct(margins) -> list[float]:
        return margin_graded(margins).tolist()

    def both(r: dict, test: str) -> tuple[list[float], list[float]]:
        m, p = r.get(f"{test}margins"), r.get(f"{test}prior_margins")
        return (correct(m), correct(np.add(m, p))) if m is not None else ([], [])

    out: dict[str, dict[str, list[dict]]] = {}
    for a, sizes in runs.items():
        for name, k in ((a, 0), (a + PRIOR, 1)):
            out[name] = {s: [{**r, "correct": both(r, "")[k], "human_correct": both(r, "human_")[k]} for r in rs]
                         for s, rs in sizes.items()}
    return out


def compare_human(data, runs: dict[str, dict[str, list[dict]]], fitted, args) -> dict[str, Any]:
    """Per size: every system on the held-out human test, beside the baselines fitted on the five
    domains' train split (the human domain is none of theirs: the pooled fits serve)."""
    from rewardroute.eval.intervals import BootstrapConfig
    from rewardroute.eval.pairwise import compare_systems

    test = data["human"]["test"]
    return {size: compare_systems(test, {a: np.array([r["human_correct"] for r in runs[a][size]]) for a in runs},
                                  fitted.correct(test), reference=next(iter(runs)),
                                  config=BootstrapConfig(resamples=args.bootstrap))
            for size in next(iter(runs.values()))}


def run_key(arch: str, n: int | None, seed: int, prior: bool, data: dict[str, Any], args) -> str:
    from rewardroute.fingerprint import short_key

    return short_key({"arch": arch, "size": size_name(n), "seed": seed, "surface_prior": prior,
                      "human": data["human"]["digest"] if data["human"] else None,
                      "settings": {k: getattr(args, k) for k in SETTINGS}, "data": data["digest"],
                      "code": code_digest(Path(__file__))})


# -- the comparison -----------------------------------------------------------------------------------

def compare(data, runs: dict[str, dict[str, list[dict]]], fitted, args) -> dict[str, Any]:
    """Per size: every architecture beside the baselines; per architecture: every size against its
    smallest (the same test pairs, paired)."""
    from rewardroute.eval.intervals import BootstrapConfig
    from rewardroute.eval.pairwise import compare_systems

    config, test = BootstrapConfig(resamples=args.bootstrap), data["test"]
    baselines = fitted.correct(test)
    by_size = {size: compare_systems(test, {a: np.array([r["correct"] for r in runs[a][size]]) for a in runs},
                                     baselines, reference=next(iter(runs)), config=config)
               for size in next(iter(runs.values()))}
    by_arch = {a: compare_systems(test, {f"{a} @ {s}": np.array([r["correct"] for r in rs]) for s, rs in sizes.items()},
                                  baselines, reference=f"{a} @ {next(iter(sizes))}", config=config)
               for a, sizes in runs.items()}
    return {"by_size": by_size, "by_arch": by_arch}


def table_rows(out: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (architecture, size): the domain average, its worst domain, the paired
    differences, and the cost."""
    rows = []
    for arch, sizes in out["runs"].items():
        cmp = out["comparison"]["by_arch"][arch]
        first = f"{arch} @ {next(iter(sizes))}"
        for size, rs in sizes.items():
            m = cmp["models"][f"{arch} @ {size}"]
            per_domain = {d: m["accuracy"][d]["estimate"] for d in FIVE if d in m["accuracy"]}
            worst = min(per_domain, key=per_domain.get)
            rows.append({"arch": arch, "size": size, "train_pairs": rs[0]["train_pairs"],
                         "average": m["accuracy"]["average"], "worst": (worst, per_domain[worst]),
                         "vs_best_baseline": m["vs_best_baseline"]["average"],
                         "vs_smallest": m.get(f"vs_{first}", {}).get("average"),
                         "train_min": float(np.mean([r["train_seconds"] for r in rs])) / 60,
                         "pairs_per_s": float(np.mean([r["pairs_per_s"] or 0.0 for r in rs]))})
    return rows


def markdown(out: dict[str, Any]) -> str:
    s = out["settings"]
    title = "More training data" if s.get("surface_prior", "off") == "off" else "Training with the surface prior"
    lines = [f"## {title} (`{out['name']}`)", "",
             f"`{out['command']}` — {out['backbone']}, {s['max_length']} tokens, {s['epochs']} epochs (best on valid), "
             f"frozen lower layers: {s['freeze_layers']}, device {s['device']} {s['precision']}; seeds "
             f"{', '.join(map(str, out['seeds']))}; {out['test_pairs']} test pairs ({s['eval_per_domain']} per domain); "
             f"baselines fitted on the {out['baselines_fitted']['train_pairs']['*']} train pairs. Finished in "
             f"{out['total_seconds'] / 60:.1f} min on {out['machine']['cpus']} CPUs.", "",
             "| architecture | pairs per domain | train pairs | domain average | worst domain | minus best baseline "
             "| minus the smallest size | train min | train pairs/s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in table_rows(out):
        lines.append(f"| {r['arch']} | {r['size']} | {r['train_pairs']} | {interval_text(r['average'])} | "
                     f"{r['worst'][0]} {r['worst'][1]:.3f} | {difference_text(r['vs_best_baseline'])} | "
                     f"{difference_text(r['vs_smallest']) if r['vs_smallest'] else ''} | {r['train_min']:.1f} | "
                     f"{r['pairs_per_s']:.2f} |")
    any_size = next(iter(out["comparison"]["by_size"].values()))
    for b, row in any_size["baselines"].items():
        lines.append(f"| {b} (baseline) | | {out['baselines_fitted']['train_pairs']['*']} | {interval_text(row['average'])} "
                     "| | | | | |")
    if any(a.endswith(PRIOR) for a in out["runs"]):
        lines += ["", f"`<arch>{PRIOR}`: the same model's margin plus the log-odds of the surface-feature regression "
                  "fitted on that run's training pairs (with the true domain, as the baseline uses it). "
                  f"`<arch>{PRIOR_TRAINED}`: trained with that prior added to every margin "
                  "(`RewardTrainingConfig.surface_prior`), so the sum is what training optimised and the network "
                  "alone is the part the surface features do not explain; without it, the prior is added after."]
    if "human_test" in out:
        lines += human_markdown(out)
    lines += ["", "Intervals: 95%, resampling prompt groups within each domain, pooled over seeds; differences "
              "are paired (the same resampled groups). A row beats the best baseline, or its smallest size, only "
              "where the interval of the difference excludes 0.", "",
              f"![accuracy against training pairs]({Path('results') / out['png']})"]
    return "\n".join(lines) + "\n"


def human_markdown(out: dict[str, Any]) -> list[str]:
    """The same models on the held-out human test (people's votes, not an LLM judge's)."""
    human = out["human_test"]
    lines = ["", f"The same models on the held-out human test ({human['pairs']} pairs; baselines fitted on the five "
             "domains' train split; the human domain is none of theirs, so the pooled fits serve, for the prior too):",
             "", "| system | pairs per domain | human test accuracy | minus best baseline | "
             f"minus `{next(iter(out['runs']))}` |", "|---|---|---|---|---|"]
    for size, cmp in human["comparison"].items():
        ref = f"vs_{next(iter(out['runs']))}"
        for name, m in cmp["models"].items():
            lines.append(f"| {name} | {size} | {interval_text(m['accuracy']['average'])} | "
                         f"{difference_text(m['vs_best_baseline']['average'])} | "
                         f"{difference_text(m[ref]['average']) if ref in m else ''} |")
        for b, row in cmp["baselines"].items():
            lines.append(f"| {b} (baseline) | | {interval_text(row['average'])} | | |")
    return lines


def status_rows(out: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows, table = [], table_rows(out)
    if out.get("name", "rm_learning_curve") != "rm_learning_curve":
        # another run (`--out`) adds only its largest size: its smaller ones repeat the main run's
        top = max(r["train_pairs"] for r in table)
        table = [r for r in table if r["train_pairs"] == top]
    if out["settings"].get("surface_prior", "off") != "off":  # the plain model's row comes from the other runs
        table = [r for r in table if PRIOR.strip(" +") in r["arch"]]
    for r in table:
        d = r["vs_best_baseline"]
        says = "higher" if d["low"] > 0 else "lower" if d["high"] < 0 else "no difference shown"
        rows.append((f"`{r['arch']}` on {r['size']} train pairs per domain, domain average "
                     f"({len(out['seeds'])} seed{'s' if len(out['seeds']) > 1 else ''})", interval_text(r["average"]), "",
                     f"vs best baseline {difference_text(d)}: {says}"))
    return rows


def plot(out: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    rows = table_rows(out)
    for arch in out["runs"]:
        mine = [r for r in rows if r["arch"] == arch]
        xs = [r["train_pairs"] / len(FIVE) for r in mine]
        ys = [r["average"]["estimate"] for r in mine]
        err = [[y - r["average"]["low"] for y, r in zip(ys, mine)], [r["average"]["high"] - y for y, r in zip(ys, mine)]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=arch)
    any_size = next(iter(out["comparison"]["by_size"].values()))
    for (b, row), style in zip(any_size["baselines"].items(), (":", "--", "-.")):
        ax.axhline(row["average"]["estimate"], ls=style, color="grey", lw=1, label=f"{b} (baseline)")
    ax.set_xscale("log")
    ax.set_xlabel("training pairs per domain (mean over the five)")
    ax.set_ylabel("test accuracy, domain average")
    ax.set_title(f"More data ({len(out['seeds'])} seed(s), 95% intervals)")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def main() -> None:
    from rewardroute.eval.baselines import fit_baselines

    args = parse()
    t0 = time.perf_counter()
    data = load(args)
    runs = {a + (PRIOR_TRAINED if prior else ""): {
        size_name(n): [run_cache.cached_run(args.work, run_key(a, n, seed, prior, data, args),
                                            f"{a}{PRIOR_TRAINED if prior else ''} on {size_name(n)} pairs per domain, "
                                            f"seed {seed}",
                                            lambda a=a, n=n, seed=seed, prior=prior: train_and_score(a, n, seed, prior,
                                                                                                      data, args))
                       for seed in args.seed_list] for n in args.size_list}
        for a in args.arch_list for prior in args.prior_list}
    runs = with_prior(runs)
    fitted = fit_baselines(data["train"])  # the train split only
    out = {"benchmark": "rm_learning_curve", "name": args.out, "backbone": args.backbone, "seeds": args.seed_list,
           "settings": {**{k: getattr(args, k) for k in SETTINGS}, "surface_prior": args.surface_prior},
           "test_pairs": len(data["test"]),
           "data_digest": data["digest"], "comparison": compare(data, runs, fitted, args),
           "runs": {a: {s: [{k: v for k, v in r.items() if not k.endswith(("correct", "margins"))} for r in rs]
                        for s, rs in sizes.items()}
                    for a, sizes in runs.items()},
           "baselines_fitted": fitted.describe(), "peak_rss_mb": peak_rss_mb(),
           "total_seconds": time.perf_counter() - t0, "command": command_line(), "machine": machine()}
    if data["human"]:
        out["human_test"] = {"pairs": len(data["human"]["test"]), "comparison": compare_human(data, runs, fitted, args)}
    out["png"] = plot(out, results_dir() / f"{args.out}.png").name
    publish(args.out, out, None if args.quick else markdown(out))


if __name__ == "__main__":
    main()
