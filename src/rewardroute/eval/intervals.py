"""Prompt-clustered bootstrap intervals for pairwise accuracy, and paired ones for differences.

Test pairs cluster heavily (a code prompt has up to 12 pairs, a story up to 15), so pairs are not
independent: the bootstrap resamples whole groups (`PreferencePair.group_key()`: the prompt, or the
story / task / opening turn that holds related prompts), within each domain. The domain average
is the mean of the per-domain accuracies of one resample; "overall" pools the pairs.

Several runs of one system (training seeds) are pooled: each resample also draws one run, so
the interval covers seed-to-seed variation as well as the choice of test prompts, and the
estimate is the mean over runs. A difference between two systems uses the same resampled groups
for both (a paired interval); their runs are drawn independently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

AVERAGE = "average"  # the mean of the per-domain accuracies
OVERALL = "overall"  # all pairs pooled


class BootstrapConfig(BaseModel):
    resamples: int = Field(default=2000, ge=100)
    level: float = Field(default=0.95, gt=0, lt=1)
    seed: int = 0


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict[str, float]:
        return {"estimate": round(self.estimate, 4), "low": round(self.low, 4), "high": round(self.high, 4)}

    def fmt(self, signed: bool = False) -> str:
        f = "{:+.3f}" if signed else "{:.3f}"
        return f"{f.format(self.estimate)} [{f.format(self.low)}, {f.format(self.high)}]"


def as_runs(correct: np.ndarray | Sequence[float] | Sequence[Sequence[float]]) -> np.ndarray:
    """[runs, pairs] float array from one run's per-pair correctness or a list of runs."""
    arr = np.asarray(correct, dtype=np.float64)
    return arr[None, :] if arr.ndim == 1 else arr


class ClusteredBootstrap:
    """Resampling plan for one test set: the same resamples serve every system scored on it."""

    def __init__(self, domains: Sequence[str], clusters: Sequence[str], config: BootstrapConfig | None = None):
        if len(domains) != len(clusters):
            raise ValueError(f"{len(domains)} domains but {len(clusters)} cluster keys")
        self.config = config or BootstrapConfig()
        self.n = len(domains)
        rng = np.random.default_rng(self.config.seed)
        self.strata: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for d in sorted(set(domains)):
            idx = np.array([i for i, x in enumerate(domains) if x == d])
            keys = [clusters[i] for i in idx]
            uniq = {k: j for j, k in enumerate(dict.fromkeys(keys))}
            member = np.array([uniq[k] for k in keys])  # cluster number of each pair of the domain
            c = len(uniq)
            weights = rng.multinomial(c, np.full(c, 1.0 / c), size=self.config.resamples).astype(np.float64)
            self.strata[d] = (idx, member, weights)
        self.groups = {d: int(w.shape[1]) for d, (_, _, w) in self.strata.items()}

    def _replicates(self, runs: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """key -> [resamples] accuracies (per domain, average, overall) of one system."""
        if runs.shape[1] != self.n:
            raise ValueError(f"{runs.shape[1]} per-pair values for a test set of {self.n} pairs")
        pick = rng.integers(runs.shape[0], size=self.config.resamples)
        out: dict[str, np.ndarray] = {}
        total_num = np.zeros(self.config.resamples)
        total_den = np.zeros(self.config.resamples)
        for d, (idx, member, weights) in self.strata.items():
            c = weights.shape[1]
            sums = np.zeros((runs.shape[0], c))
            for r in range(runs.shape[0]):
                sums[r] = np.bincount(member, weights=runs[r, idx], minlength=c)
            counts = np.bincount(member, minlength=c).astype(np.float64)
            num = np.einsum("bc,bc->b", weights, sums[pick])
            den = weights @ counts
            out[d] = num / den
            total_num += num
            total_den += den
        out[AVERAGE] = np.mean([out[d] for d in self.strata], axis=0)
        out[OVERALL] = total_num / total_den
        return out

    def _point(self, runs: np.ndarray) -> dict[str, float]:
        per = {d: float(runs[:, idx].mean()) for d, (idx, _, _) in self.strata.items()}
        return {**per, AVERAGE: float(np.mean(list(per.values()))), OVERALL: float(runs.mean())}

    def _interval(self, estimate: float, reps: np.ndarray) -> Interval:
        alpha = (1 - self.config.level) / 2
        low, high = np.quantile(reps, [alpha, 1 - alpha])
        return Interval(estimate, float(low), float(high))

    def accuracy(self, correct) -> dict[str, Interval]:
        """Accuracy with its interval per domain, for the domain average and overall."""
        runs = as_runs(correct)
        reps = self._replicates(runs, np.random.default_rng(self.config.seed + 1))
        point = self._point(runs)
        return {k: self._interval(point[k], reps[k]) for k in reps}

    def difference(self, a, b) -> dict[str, Interval]:
        """Paired interval of accuracy(a) - accuracy(b), per domain, average and overall."""
        ra, rb = as_runs(a), as_runs(b)
        reps_a = self._replicates(ra, np.random.default_rng(self.config.seed + 1))
        reps_b = self._replicates(rb, np.random.default_rng(self.config.seed + 2))
        pa, pb = self._point(ra), self._point(rb)
        return {k: self._interval(pa[k] - pb[k], reps_a[k] - reps_b[k]) for k in reps_a}


def claim(a: str, b: str, diff: Interval) -> str:
    """"a beats b" / "b beats a" only when the paired interval excludes 0, else "no difference shown"."""
    if diff.low > 0:
        return f"{a} beats {b} by {diff.estimate:+.3f} (95% CI {diff.low:+.3f}..{diff.high:+.3f})"
    if diff.high < 0:  # told from the winner's side, interval included
        return f"{b} beats {a} by {-diff.estimate:+.3f} (95% CI {-diff.high:+.3f}..{-diff.low:+.3f})"
    return (f"no difference shown between {a} and {b} ({a} - {b} = {diff.estimate:+.3f}, "
            f"95% CI {diff.low:+.3f}..{diff.high:+.3f})")


def best_per_domain(correct_by_name: Mapping[str, np.ndarray], domains: Sequence[str]) -> tuple[dict[str, str], np.ndarray]:
    """(domain -> name of the most accurate system there, per-pair correctness of that composite).

    Picking the best baseline per domain on the test pairs themselves favours the baselines: a
    model's margin over this composite is a conservative one.
    """
    names = list(correct_by_name)
    doms = np.asarray(domains)
    best: dict[str, str] = {}
    composite = np.zeros(len(domains))
    for d in sorted(set(domains)):
        mask = doms == d
        best[d] = max(names, key=lambda n: (float(np.mean(as_runs(correct_by_name[n])[:, mask])), -names.index(n)))
        composite[mask] = as_runs(correct_by_name[best[d]]).mean(axis=0)[mask]
    return best, composite


def intervals_dict(intervals: Mapping[str, Interval]) -> dict[str, dict[str, float]]:
    return {k: v.to_dict() for k, v in intervals.items()}
