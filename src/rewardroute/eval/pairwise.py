"""Pairwise accuracy of reward models, and the "longer response wins" baseline."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch

from ..data.schemas import PreferencePair


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


def margin_correct(chosen: torch.Tensor, rejected: torch.Tensor) -> list[float]:
    """1 where chosen scores higher, 0.5 on a tie, 0 otherwise."""
    return [1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen.tolist(), rejected.tolist())]


def length_baseline(pairs: Sequence[PreferencePair]) -> dict[str, float]:
    """Accuracy of "the longer response (in characters) wins"; equal lengths count half."""
    correct = [1.0 if len(p.chosen) > len(p.rejected) else 0.5 if len(p.chosen) == len(p.rejected) else 0.0
               for p in pairs]
    return accuracy_by_domain(correct, [p.domain for p in pairs])


def evaluate_reward_model(model, pairs: Sequence[PreferencePair], *, batch_size: int = 64,
                          oracle_domain: bool = False) -> dict[str, Any]:
    """Score every pair and return the `rm eval --json` object."""
    prompts = [p.prompt for p in pairs] * 2
    responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    domains = [p.domain for p in pairs] * 2 if oracle_domain else None
    t0 = time.perf_counter()
    out = model.score(prompts, responses, batch_size=batch_size, domains=domains, return_output=True)
    seconds = time.perf_counter() - t0
    n = len(pairs)
    acc = accuracy_by_domain(margin_correct(out.rewards[:n], out.rewards[n:]), [p.domain for p in pairs])
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
    return result
