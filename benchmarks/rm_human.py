"""Training mixes against human preferences: which data makes a reward model agree with people?

Trains one reward model (`--arch`, default single) per training mix and seed, and scores each on
four sets: the human domain's valid and test splits, and the five proxy-labelled domains' valid
and test splits. The mixes (all from the train splits, `--train-per-domain` pairs per domain):

- `today`: the five domains;
- `today+human`: the five and the human domain;
- `human only`: the human domain alone, with the pair budget of `today`;
- `today (chat 1/4)`: the five, with the judge-labelled chat pairs down-weighted to a quarter;
- `today+human (length-balanced)`: as `today+human`, each domain sampled with as many pairs where
  the chosen answer is longer as where it is shorter (a length-debiasing step).

Beside every model: "longer wins", the length rule and the surface-feature regression, fitted on
the train splits only. Intervals are prompt-clustered bootstraps pooled over seeds; differences
are paired. The *default mix* is chosen on valid only: the best human-valid accuracy among mixes
whose five-domain valid average is not below the fitted length rule's. The human test split is
read only to report.

    python benchmarks/rm_human.py                       # 5 mixes x seeds 0,1 (about 1 h on 2 cores)
    python benchmarks/rm_human.py --seeds 0,1,2         # finished (mix, seed) runs are reused
    python benchmarks/rm_human.py --quick               # a smoke run in a couple of minutes
    python benchmarks/rm_human.py --mixes architectures --out rm_human_archs   # every architecture

Each finished run is cached in runs/rm_human/ under a key of its settings, the data and the code,
so a rerun never mixes results of other data, code or settings. Prints one JSON object, saves
benchmarks/results/rm_human.json and a PNG, and writes its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchlib import run_cache
from benchlib.bench import (add_run_args, code_digest, command_line, difference_text, interval_text, machine, peak_rss_mb,
                            prefs_digest, publish, results_dir)

FIVE = ("chat", "code", "math", "safety", "summarization")
HUMAN = "human"
MIXES: dict[str, dict[str, Any]] = {
    "today": {"domains": FIVE},
    "today+human": {"domains": (*FIVE, HUMAN)},
    "human only": {"domains": (HUMAN,), "budget_of": len(FIVE)},
    "today (chat 1/4)": {"domains": FIVE, "scale": {"chat": 0.25}},
    "today+human (length-balanced)": {"domains": (*FIVE, HUMAN), "balance_length": True},
    # opt-in (--mixes, or --mixes architectures): today's mix for the other architectures, and the
    # routed ones trained on today's mix, then given the human domain by `add-domain` (their five
    # experts untouched). Other architectures, so never default candidates.
    "today (more)": {"domains": FIVE, "arch": "more"},
    "today (rodos)": {"domains": FIVE, "arch": "rodos"},
    "today (arliss)": {"domains": FIVE, "arch": "arliss"},
    "rodos today then add-domain human": {"domains": FIVE, "arch": "rodos", "add_domain": HUMAN},
    "arliss today then add-domain human": {"domains": FIVE, "arch": "arliss", "add_domain": HUMAN},
}
DEFAULT_MIXES = [m for m, spec in MIXES.items() if "arch" not in spec]
# `--mixes architectures`: every architecture on today's mix (single's is the reference), and the
# routed ones given the human domain afterwards
PRESETS = {"architectures": ["today", *(m for m, spec in MIXES.items() if "arch" in spec)]}
SETS = ("human_valid", "human_test", "five_valid", "five_test")


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data"), help="built five-domain data (built if missing)")
    ap.add_argument("--human-data", type=Path, default=Path("data-human"),
                    help="built human domain (`data build --domains human`; built if missing)")
    ap.add_argument("--arch", default="single")
    ap.add_argument("--mixes", default=",".join(DEFAULT_MIXES), help=f"comma list of mixes, from {list(MIXES)}; or a preset: {', '.join(PRESETS)}")
    ap.add_argument("--backbone", default="all-MiniLM-L6-v2")
    ap.add_argument("--train-per-domain", type=int, default=80)
    ap.add_argument("--valid-per-domain", type=int, default=30, help="valid pairs per domain for epoch choice")
    ap.add_argument("--eval-per-domain", type=int, default=80, help="five-domain valid/test pairs per domain")
    ap.add_argument("--human-eval", type=int, default=None, help="cap on human valid/test pairs (default all)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--seeds", default=None, help="training seeds, comma list (default 0,1; --quick: 0)")
    add_run_args(ap, "rm_human")
    args = ap.parse_args()
    if args.quick:
        args.train_per_domain, args.valid_per_domain, args.eval_per_domain, args.human_eval = 6, 4, 6, 24
        args.epochs, args.max_length, args.bootstrap = 1, 48, 200
        args.out += "_quick"
        args.work = args.work.with_name(args.work.name + "_quick")
    args.seed_list = [int(s) for s in (args.seeds or ("0" if args.quick else "0,1")).split(",") if s.strip()]
    return args


# -- data ----------------------------------------------------------------------------------------

def load(args) -> dict[str, Any]:
    from rewardroute.data import read_pairs
    from rewardroute.data.ensure import ensure_built
    from rewardroute.data.sampling import cap_pairs, cap_per_domain

    five, human = ensure_built(args.data), ensure_built(args.human_data, domains=[HUMAN])
    split = lambda name: ([p for p in read_pairs(five / "prefs" / f"{name}.jsonl") if p.domain in FIVE]  # noqa: E731
                          + [p for p in read_pairs(human / "prefs" / f"{name}.jsonl") if p.domain == HUMAN])
    train, valid, test = split("train"), split("valid"), split("test")
    flat = lambda by: [p for d in FIVE if d in by for p in by[d]]  # noqa: E731
    s = args.sample_seed
    return {
        "train_by": {d: [p for p in train if p.domain == d] for d in (*FIVE, HUMAN)},
        "valid_by": cap_per_domain(valid, args.valid_per_domain, s),
        "sets": {"human_valid": cap_pairs([p for p in valid if p.domain == HUMAN], args.human_eval, s),
                 "human_test": cap_pairs([p for p in test if p.domain == HUMAN], args.human_eval, s),
                 "five_valid": flat(cap_per_domain([p for p in valid if p.domain in FIVE], args.eval_per_domain, s)),
                 "five_test": flat(cap_per_domain([p for p in test if p.domain in FIVE], args.eval_per_domain, s))},
        "train": train,
        "digest": {"five": prefs_digest(five), "human": prefs_digest(human)},
    }


def mix_pairs(name: str, data: dict[str, Any], args) -> list:
    """The training pairs of a mix (deterministic for the sample seed)."""
    from rewardroute.data.sampling import balance_length, cap_pairs

    spec = MIXES[name]
    out = []
    for d in spec["domains"]:  # add_domain's pairs come later, in train_and_score
        n = int(args.train_per_domain * spec.get("budget_of", 1) * spec.get("scale", {}).get(d, 1.0))
        pool = data["train_by"][d]
        out += balance_length(pool, n, args.sample_seed) if spec.get("balance_length") else cap_pairs(pool, n,
                                                                                                      args.sample_seed)
    return out


# -- one run ---------------------------------------------------------------------------------------

def run_key(name: str, seed: int, data: dict[str, Any], args) -> str:
    from rewardroute.fingerprint import short_key

    settings = {k: getattr(args, k) for k in ("arch", "backbone", "train_per_domain", "valid_per_domain",
                                              "eval_per_domain", "human_eval", "epochs", "lr", "head_lr",
                                              "batch_size", "max_length", "sample_seed")}
    return short_key({"mix": name, "mix_spec": MIXES[name], "seed": seed, "settings": settings,
                      "data": data["digest"], "code": code_digest(Path(__file__))})


def train_and_score(name: str, seed: int, data: dict[str, Any], args) -> dict[str, Any]:
    from rewardroute.backbone import BackboneConfig
    from rewardroute.eval.pairwise import pair_correct
    from rewardroute.reward.registry import get_arch
    from rewardroute.reward.reward_config import RewardTrainingConfig
    from rewardroute.data.sampling import cap_pairs
    from rewardroute.reward.reward_trainer import build_for_training

    spec = MIXES[name]
    train = mix_pairs(name, data, args)
    domains = sorted({p.domain for p in train})
    valid = [p for d in domains for p in data["valid_by"].get(d, [])]
    cls = get_arch(spec.get("arch", args.arch))
    cfg = cls.config_class(backbone=BackboneConfig(name_or_path=args.backbone, max_length=args.max_length),
                           domains=domains)
    model = build_for_training(cls, cfg, seed)
    targs = RewardTrainingConfig(epochs=args.epochs, lr=args.lr, head_lr=args.head_lr,
                                 batch_size=args.batch_size, seed=seed)
    t0 = time.perf_counter()
    fit = model.fit(train, valid, targs)
    added = None
    if spec.get("add_domain"):
        d = spec["add_domain"]
        new = cap_pairs(data["train_by"][d], args.train_per_domain, args.sample_seed)
        added = model.add_domain(d, new, data["valid_by"].get(d, []), targs)
        train = train + new
        domains = sorted({*domains, d})
    record: dict[str, Any] = {"mix": name, "arch": cls.arch, "seed": seed, "train_pairs": len(train),
                              "add_domain": added,
                              "train_by_domain": {d: sum(p.domain == d for p in train) for d in domains},
                              "train_longer_wins": float(np.mean([len(p.chosen) > len(p.rejected) for p in train])),
                              "train_seconds": time.perf_counter() - t0, "best_epoch": fit.best_epoch,
                              "correct": {}}
    for s in SETS:
        # a model trained without a set's domains still scores it: the domain-free reward
        correct, _, _ = pair_correct(model, data["sets"][s])
        record["correct"][s] = correct.tolist()
    return record


def cached_run(name: str, seed: int, data: dict[str, Any], args) -> dict[str, Any]:
    return run_cache.cached_run(args.work, run_key(name, seed, data, args), f"{name} seed {seed}",
                                lambda: train_and_score(name, seed, data, args))


# -- the comparison ----------------------------------------------------------------------------------

def compare(data, runs: dict[str, list[dict]], fitted, args) -> dict[str, Any]:
    from rewardroute.eval.intervals import BootstrapConfig
    from rewardroute.eval.pairwise import compare_systems

    out = {}
    for s in SETS:
        pairs = data["sets"][s]
        models = {m: np.array([r["correct"][s] for r in rs]) for m, rs in runs.items()}
        out[s] = compare_systems(pairs, models, fitted.correct(pairs), reference=next(iter(runs)),
                                 config=BootstrapConfig(resamples=args.bootstrap))
    return out


def average(comparison: dict, name: str, baseline: bool = False) -> float:
    row = comparison["baselines"][name] if baseline else comparison["models"][name]["accuracy"]
    return row["average"]["estimate"]


def choose_default(comparisons: dict[str, Any], mixes: list[str]) -> dict[str, Any]:
    """On valid only: the best human-valid mix among those not below the length rule on the five."""
    rule = average(comparisons["five_valid"], "length_rule", baseline=True)
    mixes = [m for m in mixes if "arch" not in MIXES[m]]  # training data for the default arch only
    eligible = [m for m in mixes if average(comparisons["five_valid"], m) >= rule]
    pool = eligible or mixes
    best = max(pool, key=lambda m: average(comparisons["human_valid"], m))
    return {"mix": best, "rule": "best human-valid accuracy among mixes whose five-domain valid average is "
                                 "not below the fitted length rule's",
            "length_rule_five_valid": rule, "eligible": eligible,
            "human_valid": {m: average(comparisons["human_valid"], m) for m in mixes},
            "five_valid": {m: average(comparisons["five_valid"], m) for m in mixes},
            "none_eligible": not eligible}


def status_rows(out: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """README rows: the rule's pick on the held-out human test beside the baselines, and every
    mix against the first one (today's) on that test, all with paired intervals."""
    name = out.get("name", "rm_human")
    if name == "rm_human_archs":
        return architecture_rows(out)
    if name != "rm_human":
        return []
    cmp, d = out["comparison"]["human_test"], out["default"]
    mix, first = d["mix"], next(iter(out["mixes"]))
    row = cmp["models"][mix]
    acc, vs = row["accuracy"]["average"], row["vs_best_baseline"]["average"]
    picked = ("the rule's fallback: no mix clears the length rule on the five valid domains"
              if d.get("none_eligible") else "chosen on valid")
    baselines = ", ".join(f"{b} {average(cmp, b, baseline=True):.3f}" for b in cmp["baselines"])
    rows = [(f"`{out['arch']}` on mix `{mix}` ({picked}), held-out human test "
             f"({out['sets']['human_test']} pairs, {len(out['seeds'])} seed(s))",
             interval_text(acc), baselines,
             f"vs best baseline {difference_text(vs)}: {_says(vs, mix, 'best baseline')}")]
    others = [m for m in cmp["models"] if m != first]
    diffs = {m: cmp["models"][m][f"vs_{first}"]["average"] for m in others}
    shown = [m for m, v in diffs.items() if v["low"] > 0 or v["high"] < 0]
    rows.append((f"each mix minus `{first}` on the human test (paired)",
                 "; ".join(f"{m} {difference_text(v)}" for m, v in diffs.items()), "",
                 (f"interval excludes 0 for: {', '.join(shown)}" if shown else "no difference shown for any mix")))
    return rows


def architecture_rows(out: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """README rows of the architectures run: each model on the held-out human test, against the
    best baseline and against `single` on the same mix (today's), with paired intervals."""
    cmp, first = out["comparison"]["human_test"], next(iter(out["mixes"]))
    baselines = ", ".join(f"{b} {average(cmp, b, baseline=True):.3f}" for b in cmp["baselines"])
    rows = []
    for mix, row in cmp["models"].items():
        acc, vs = row["accuracy"]["average"], row["vs_best_baseline"]["average"]
        arch = out["mixes"][mix].get("arch", out["arch"])
        rest = f"vs best baseline {difference_text(vs)}: {_says(vs, arch, 'best baseline')}"
        if mix != first:
            d = row[f"vs_{first}"]["average"]
            rest += f"; vs {out['arch']} on `{first}` {difference_text(d)}: {_says(d, mix, first)}"
        rows.append((f"`{arch}`, mix `{mix}`, held-out human test ({out['sets']['human_test']} pairs, "
                     f"{len(out['seeds'])} seeds)", interval_text(acc),
                     baselines if mix == first else "", rest))
    return rows


def _says(d: dict[str, Any], a: str, b: str) -> str:
    return f"{a} higher" if d["low"] > 0 else f"{b} higher" if d["high"] < 0 else "no difference shown"


def _archs(out: dict[str, Any]) -> str:
    named = sorted({spec["arch"] for spec in out["mixes"].values() if "arch" in spec})
    return (f"{out['arch']} (the mixes that name another architecture: {', '.join(named)}, with its default "
            "learning rates)") if named else out["arch"]


def markdown(out: dict[str, Any]) -> str:
    from rewardroute.eval.report import comparison_markdown

    c = out["comparison"]
    d = out["default"]
    archs = out["name"] == "rm_human_archs"
    title = "Every architecture against human preferences" if archs else "Training mixes against human preferences"
    lines = [f"## {title} (`{out['name']}`)", "",
             f"`{out['command']}` — {_archs(out)} on {out['backbone']}, {out['settings']['max_length']} tokens, "
             f"{out['settings']['epochs']} epochs, {out['settings']['train_per_domain']} train pairs per domain, "
             f"seeds {', '.join(map(str, out['seeds']))}; baselines fitted on the train splits. "
             f"Finished in {out['total_seconds'] / 60:.1f} min on {out['machine']['cpus']} CPUs.", "",
             (f"Rows \"X - today\" compare each model with `{out['arch']}` on today's mix (the same pairs, "
              "paired). The default mix is chosen in `rm_human`, not here." if archs else
              f"**Default mix, chosen on valid:** `{d['mix']}` ({d['rule']}; length rule on the five valid domains "
              f"{d['length_rule_five_valid']:.3f}; eligible: {', '.join(d['eligible']) or 'none'})."), ""]
    for s, title in (("human_test", "Held-out human test"), ("five_test", "Five-domain test"),
                     ("human_valid", "Human valid (the default is chosen here)")):
        lines += [f"### {title} ({out['sets'][s]} pairs)", "", comparison_markdown(c[s]), ""]
    lines.append(f"![human agreement by mix]({Path('results') / out['png']})")
    return "\n".join(lines) + "\n"


def plot(out: dict[str, Any], path: Path) -> Path:
    """Each mix and baseline on the human test and the five-domain test, with 95% intervals."""
    from rewardroute.eval.plots import accuracy_bars

    sets = {"human test": "human_test", "five-domain test": "five_test"}
    rows, intervals = {}, {}
    for name in out["accuracy"]:
        rows[name], intervals[name] = {}, {}
        for col, s in sets.items():
            c = out["comparison"][s]
            cell = (c["baselines"][name] if name in c["baselines"] else c["models"][name]["accuracy"])["average"]
            rows[name][col], intervals[name][col] = cell["estimate"], (cell["low"], cell["high"])
    return accuracy_bars(rows, path, intervals=intervals, columns=list(sets),
                         title=f"Agreement with people (human test) and with the five proxy labels "
                               f"({len(out['seeds'])} seed(s))")


def main() -> None:
    from rewardroute.eval.baselines import fit_baselines

    args = parse()
    t0 = time.perf_counter()
    data = load(args)
    mixes = PRESETS.get(args.mixes) or [m.strip() for m in args.mixes.split(",") if m.strip()]
    unknown = [m for m in mixes if m not in MIXES]
    if unknown:
        raise SystemExit(f"unknown mix {unknown}; choose from {list(MIXES)}")
    runs = {m: [cached_run(m, seed, data, args) for seed in args.seed_list] for m in mixes}
    fitted = fit_baselines(data["train"])  # the train splits only
    comparisons = compare(data, runs, fitted, args)
    rows = {m: {s: average(comparisons[s], m) for s in SETS} for m in mixes}
    rows.update({b: {s: average(comparisons[s], b, baseline=True) for s in SETS}
                 for b in comparisons["human_test"]["baselines"]})
    out = {
        "benchmark": "rm_human", "name": args.out, "arch": args.arch, "backbone": args.backbone,
        "seeds": args.seed_list, "mixes": {m: MIXES[m] for m in mixes},
        "settings": {k: getattr(args, k) for k in ("train_per_domain", "valid_per_domain", "eval_per_domain",
                                                  "human_eval", "epochs", "lr", "head_lr", "batch_size",
                                                  "max_length", "sample_seed", "bootstrap")},
        "sets": {s: len(v) for s, v in data["sets"].items()},
        "sets_by_source": {s: _count(v, "source") for s, v in data["sets"].items()},
        "data_digest": data["digest"], "accuracy": rows, "comparison": comparisons,
        "default": choose_default(comparisons, mixes),
        "runs": {m: [{k: v for k, v in r.items() if k != "correct"} for r in rs] for m, rs in runs.items()},
        "baselines_fitted": fitted.describe(), "peak_rss_mb": peak_rss_mb(),
        "total_seconds": time.perf_counter() - t0, "command": command_line(), "machine": machine(),
    }
    out["png"] = plot(out, results_dir() / f"{args.out}.png").name
    publish(args.out, out, None if args.quick else markdown(out))


def _count(pairs, field: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in pairs:
        counts[getattr(p, field)] = counts.get(getattr(p, field), 0) + 1
    return counts


if __name__ == "__main__":
    main()
