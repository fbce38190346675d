"""Figures over cross-validation folds: the mean, a 95% t-interval, and how many folds are
behind it (a metric can be undefined in a fold: it is counted as missing, never dropped
silently), plus the words a claim may use, decided by the interval alone."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

LEVEL = 0.95


def _defined(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# Student t quantile at 0.975 for 1..30 degrees of freedom (no scipy dependency for one number).
_T975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
         2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
         2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272)


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t (a 95% two-sided interval)."""
    if df < 1:
        raise ValueError("a t-interval needs at least 1 degree of freedom")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964  # Cornish-Fisher expansion around the normal quantile: < 1e-4 off beyond 30
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def fold_stats(values: Sequence[float | None]) -> dict[str, Any]:
    """`{"mean", "sd", "n", "of", "ci95", "values"}` over the folds where the value is defined.
    `sd` is the sample standard deviation; `ci95` the t-interval of the mean (None below 2 folds)."""
    vals = [float(v) for v in values if _defined(v)]
    out: dict[str, Any] = {"mean": None, "sd": None, "n": len(vals), "of": len(values), "ci95": None,
                           "values": [float(v) if _defined(v) else None for v in values]}
    if not vals:
        return out
    n = len(vals)
    mean = sum(vals) / n
    out["mean"] = mean
    if n >= 2:
        sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
        half = t975(n - 1) * sd / math.sqrt(n)
        out.update(sd=sd, ci95=[mean - half, mean + half])
    return out


def paired_diff(a: Sequence[float | None], b: Sequence[float | None]) -> dict[str, Any]:
    """`fold_stats` of a - b, fold by fold (folds where either is undefined count as missing)."""
    if len(a) != len(b):
        raise ValueError(f"paired folds differ in number: {len(a)} vs {len(b)}")
    return fold_stats([x - y if _defined(x) and _defined(y) else None for x, y in zip(a, b)])


def fmt(stats: dict | None, digits: int = 3) -> str:
    """`0.040 [-0.039, 0.119] (5/5 folds)`; a figure without an interval says so. Old results
    that kept only a mean and a spread print as such, with "no interval"."""
    if not stats or stats.get("mean") is None:
        if stats and stats.get("of"):
            return f"– (0/{stats['of']} folds)"
        return "–"
    m = f"{stats['mean']:.{digits}f}"
    if "n" not in stats:  # a mean and sd from an older results file
        sd = f" (sd {stats['sd']:.{digits}f} over folds, no interval)" if stats.get("sd") is not None else " (no interval)"
        return m + sd
    folds = f"{stats['n']}/{stats['of']} folds"
    if stats.get("ci95") is None:
        return f"{m} ({folds}, no interval)"
    lo, hi = stats["ci95"]
    return f"{m} [{lo:.{digits}f}, {hi:.{digits}f}] ({folds})"


def verdict(diff: dict | None, a: str, b: str) -> str:
    """The claim an interval of `a - b` supports: "a higher than b" / "a lower than b" only when
    it excludes 0; otherwise "no difference shown" (also when there is no interval)."""
    if not diff or diff.get("ci95") is None:
        return f"{a} vs {b}: no difference shown (no interval)"
    lo, hi = diff["ci95"]
    if lo > 0 or hi < 0:
        return f"{a} {'higher' if lo > 0 else 'lower'} than {b} (95% interval of the difference excludes 0)"
    return f"{a} vs {b}: no difference shown (95% interval of the difference includes 0)"
