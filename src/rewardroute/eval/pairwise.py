"""Pairwise accuracy of reward models, beside fitted baselines, with clustered bootstrap intervals."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..data.schemas import PreferencePair
from .baselines import FittedBaselines, longer_wins_correct, margin_graded
from .intervals import AVERAGE, BootstrapConfig, ClusteredBootstrap, best_per_domain, claim, intervals_dict


def accuracy_by_domain(correct: Sequence[float], domains: Sequence[str]) -> dict[str, float]:
    """{"overall": mean over all pairs, "<domain>": mean over that domain's pairs}."""
    by: dict[str, list[float]] = defaultdict(list)
    for c, d in zip(correct, domains):
        by[d].append(c)
    out = {"overall": sum(correct) / len(correct) if correct else float("nan")}
    for d in sorted(by):
        out[d] = sum(by[d]) / len(by[d])
    return out


def macro_average(acc: dict[str, float]) -> float:
    vals = [v for k, v in acc.items() if k != "overall"]
    return sum(vals) / len(vals) if vals else float("nan")


def length_baseline(pairs: Sequence[PreferencePair]) -> dict[str, float]:
    """Accuracy of "the longer response (in characters) wins"; equal lengths count half."""
    return accuracy_by_domain(longer_wins_correct(pairs).tolist(), [p.domain for p in pairs])


def baseline_correct(pairs: Sequence[PreferencePair], fitted: FittedBaselines | None) -> dict[str, np.ndarray]:
    """Per-pair correctness of every baseline: all three when fitted on a training set, else
    only "longer wins" (the one that needs no training data)."""
    return fitted.correct(pairs) if fitted is not None else {"longer_wins": longer_wins_correct(pairs)}


def compare_systems(pairs: Sequence[PreferencePair], models: Mapping[str, Any], baselines: Mapping[str, np.ndarray],
                    *, reference: str | None = None, config: BootstrapConfig | None = None) -> dict[str, Any]:
    """Accuracy intervals of every model and baseline on `pairs`, and paired differences.

    `models`: name -> per-pair correctness, one run ([pairs]) or several seeds ([runs, pairs]).
    Each model is compared with the best baseline of each domain (a composite, picked on these
    pairs, so the margin is conservative) and, with `reference`, with that model (e.g. single).
    A claim "X beats Y" is made only where the paired 95% interval excludes 0.
    """
    domains = [p.domain for p in pairs]
    boot = ClusteredBootstrap(domains, [p.group_key() for p in pairs], config)
    best, composite = best_per_domain(baselines, domains)
    out: dict[str, Any] = {
        "bootstrap": {"resamples": boot.config.resamples, "level": boot.config.level,
                      "cluster": "group key (the prompt, or its story / task / first turn)", "groups": boot.groups},
        "baselines": {name: intervals_dict(boot.accuracy(c)) for name, c in baselines.items()},
        "best_baseline": best,
        "models": {},
    }
    for name, correct in models.items():
        row: dict[str, Any] = {"accuracy": intervals_dict(boot.accuracy(correct)),
                               "runs": int(np.atleast_2d(np.asarray(correct)).shape[0])}
        row["vs_best_baseline"] = _differences(boot.difference(correct, composite), name, "best baseline")
        if reference is not None and name != reference:
            row[f"vs_{reference}"] = _differences(boot.difference(correct, models[reference]), name, reference)
        out["models"][name] = row
    return out


def _differences(diffs, a: str, b: str) -> dict[str, Any]:
    return {k: {**d.to_dict(), "claim": claim(a, b, d)} for k, d in diffs.items()}


def expert_load(probs: torch.Tensor, domains: Sequence[str], experts: Sequence[str]) -> dict[str, dict[str, float]]:
    """{true domain: {expert: mean probability the router (or MoRE's gate) gave it}}: what the
    routing learned, row by row of a confusion matrix. A collapsed gate shows as one column."""
    by: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(domains):
        by[d].append(i)
    return {d: dict(zip(experts, probs[idx].float().mean(dim=0).tolist())) for d, idx in sorted(by.items())}


def _scored(model, pairs: Sequence[PreferencePair], batch_size: int, oracle_domain: bool):
    """The model's score output on every pair's chosen responses, then on its rejected ones."""
    return model.score([p.prompt for p in pairs] * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs],
                       batch_size=batch_size, domains=[p.domain for p in pairs] * 2 if oracle_domain else None,
                       return_output=True)


def _margins(rewards: torch.Tensor) -> np.ndarray:
    n = len(rewards) // 2
    return (rewards[:n] - rewards[n:]).double().numpy()


def pair_correct(model, pairs: Sequence[PreferencePair], *, batch_size: int = 64,
                 oracle_domain: bool = False) -> tuple[np.ndarray, Any, float]:
    """(per-pair correctness, the model's score output, seconds spent scoring)."""
    t0 = time.perf_counter()
    out = _scored(model, pairs, batch_size, oracle_domain)
    seconds = time.perf_counter() - t0
    return margin_graded(_margins(out.rewards)), out, seconds


def pair_margins(model, pairs: Sequence[PreferencePair], *, batch_size: int = 64) -> np.ndarray:
    """reward(chosen) - reward(rejected) for each pair."""
    return _margins(_scored(model, pairs, batch_size, oracle_domain=False).rewards)


def evaluate_reward_model(model, pairs: Sequence[PreferencePair], *, batch_size: int = 64,
                          oracle_domain: bool = False, baselines: FittedBaselines | None = None,
                          intervals: BootstrapConfig | None = None, keep_correct: bool = False) -> dict[str, Any]:
    """Score every pair and return the `rm eval --json` object.

    With `intervals`, it adds the clustered bootstrap intervals, the baselines (all three when
    `baselines` were fitted on a training set, else "longer wins") and the model's paired margin
    over the best baseline per domain and on the domain average. With `keep_correct`, "correct"
    holds the per-pair correctness (for intervals pooled over several runs).
    """
    correct, out, seconds = pair_correct(model, pairs, batch_size=batch_size, oracle_domain=oracle_domain)
    n = len(pairs)
    acc = accuracy_by_domain(correct.tolist(), [p.domain for p in pairs])
    result: dict[str, Any] = {
        "accuracy": acc,
        "macro_accuracy": macro_average(acc),
        "pairs": n,
        "params": model.param_report(),
        "pairs_per_second": n / seconds if seconds > 0 else float("inf"),
        "length_baseline": length_baseline(pairs),
    }
    if out.domain_probs is not None and model.config.domains:
        known = model.config.domains
        pred = out.domain_probs[:n].argmax(dim=-1).tolist()
        hits = [known[i] == p.domain for i, p in zip(pred, pairs) if p.domain in known]
        if hits:
            result["router_accuracy"] = sum(hits) / len(hits)
        result["expert_load"] = expert_load(out.domain_probs[:n], [p.domain for p in pairs], known)
    if intervals is not None and pairs:
        comparison = compare_systems(pairs, {model.arch: correct}, baseline_correct(pairs, baselines), config=intervals)
        mine = comparison["models"][model.arch]
        result["intervals"] = mine["accuracy"]
        result["baselines"] = comparison["baselines"]
        result["baselines_fitted_on"] = baselines.train_pairs if baselines is not None else None
        result["best_baseline"] = comparison["best_baseline"]
        result["vs_best_baseline"] = mine["vs_best_baseline"]
        result["claim"] = mine["vs_best_baseline"][AVERAGE]["claim"]
        result["bootstrap"] = comparison["bootstrap"]
    if keep_correct:
        result["correct"] = correct
    return result
