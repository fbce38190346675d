"""Baselines fitted on train only, clustered and paired bootstrap intervals, and the claim rule."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rewardroute.data.schemas import PreferencePair
from rewardroute.eval.baselines import POOLED, BaselineConfig, fit_baselines
from rewardroute.eval.intervals import BootstrapConfig, ClusteredBootstrap, Interval, best_per_domain, claim
from rewardroute.eval.pairwise import compare_systems


def _pair(i: int, domain: str, chosen: str, rejected: str, prompt: str | None = None) -> PreferencePair:
    return PreferencePair(id=f"{domain}{i}", prompt=prompt or f"{domain} prompt {i}", chosen=chosen,
                          rejected=rejected, domain=domain)


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "eps"]) for _ in range(n))


def length_data(n: int, seed: int) -> list[PreferencePair]:
    """"terse": the shorter answer wins; "verbose": the longer one wins."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        short, long_ = _words(rng, rng.randint(3, 8)), _words(rng, rng.randint(20, 40))
        out += [_pair(i, "terse", short, long_), _pair(i, "verbose", long_, short)]
    return out


def marker_data(n: int, seed: int) -> list[PreferencePair]:
    """"math": random lengths on both sides; the rejected answer ends with a `#### N` marker."""
    rng = random.Random(seed)
    return [_pair(i, "math", _words(rng, rng.randint(10, 30)) + " so 12",
                  _words(rng, rng.randint(10, 30)) + " #### 12") for i in range(n)]


def test_length_rule_fits_the_direction_per_domain_on_train_only() -> None:
    fitted = fit_baselines(length_data(40, 0))
    assert fitted.length_direction("terse") == -1 and fitted.length_direction("verbose") == 1
    test = length_data(30, 1)
    correct = fitted.correct(test)
    terse = [i for i, p in enumerate(test) if p.domain == "terse"]
    assert correct["longer_wins"][terse].mean() == 0.0
    assert correct["length_rule"][terse].mean() == 1.0
    assert correct["length_rule"].mean() == 1.0
    # a domain unseen in training falls back to the pooled fit (half terse, half verbose here)
    assert fitted.length_direction("unseen") == fitted.length_direction(POOLED)
    assert set(fitted.describe()["length_rule"]) == {POOLED, "terse", "verbose"}


def test_surface_regression_finds_an_answer_marker_that_length_misses() -> None:
    fitted = fit_baselines(marker_data(120, 0), BaselineConfig(min_domain_pairs=10))
    correct = fitted.correct(marker_data(80, 1))
    assert correct["surface_logreg"].mean() > 0.9
    assert correct["length_rule"].mean() < 0.75
    weights = fitted.describe()["surface_logreg"]["math"]["weights"]
    assert weights["answer_marker"] < 0  # the marker speaks against an answer


def test_baselines_need_training_pairs() -> None:
    with pytest.raises(Exception, match="training pairs"):
        fit_baselines([])


def _clustered(groups: int, per_group: int, accurate_groups: int) -> tuple[list[str], list[str], np.ndarray]:
    domains, clusters, correct = [], [], []
    for g in range(groups):
        for _ in range(per_group):
            domains.append("d")
            clusters.append(f"g{g}")
            correct.append(1.0 if g < accurate_groups else 0.0)
    return domains, clusters, np.array(correct)


def test_clustered_interval_is_wider_than_one_that_treats_pairs_as_independent() -> None:
    domains, clusters, correct = _clustered(10, 20, 5)
    clustered = ClusteredBootstrap(domains, clusters).accuracy(correct)["d"]
    independent = ClusteredBootstrap(domains, [str(i) for i in range(200)]).accuracy(correct)["d"]
    assert clustered.estimate == independent.estimate == 0.5
    assert (clustered.high - clustered.low) > 2.5 * (independent.high - independent.low)
    assert clustered.low < 0.3 and clustered.high > 0.7  # ~ a binomial on 10 groups, not on 200 pairs


def test_average_is_the_mean_of_domains_and_overall_pools_pairs() -> None:
    domains = ["a"] * 10 + ["b"] * 30
    correct = np.array([1.0] * 10 + [0.0] * 30)
    acc = ClusteredBootstrap(domains, [str(i) for i in range(40)]).accuracy(correct)
    assert acc["a"].estimate == 1.0 and acc["b"].estimate == 0.0
    assert acc["average"].estimate == 0.5 and acc["overall"].estimate == 0.25


def test_paired_difference_and_claims() -> None:
    domains, clusters, base = _clustered(40, 5, 20)
    boot = ClusteredBootstrap(domains, clusters, BootstrapConfig(resamples=1000))
    same = boot.difference(base, base)["d"]
    assert same == Interval(0.0, 0.0, 0.0) and claim("m", "b", same).startswith("no difference shown")
    better = base.copy()
    better[100:160] = 1.0  # 12 more groups right
    diff = boot.difference(better, base)["d"]
    assert diff.estimate == pytest.approx(0.3) and diff.low > 0
    assert claim("model", "baseline", diff).startswith("model beats baseline by +0.300")
    assert claim("model", "baseline", boot.difference(base, better)["d"]).startswith(
        f"baseline beats model by +0.300 (95% CI {diff.low:+.3f}..")
    # one group more is within the noise of 40 groups
    slightly = base.copy()
    slightly[100:105] = 1.0
    assert claim("m", "b", boot.difference(slightly, base)["d"]).startswith("no difference shown")


def test_seeds_are_pooled_mean_estimate_and_wider_interval() -> None:
    domains, clusters, low = _clustered(50, 2, 20)
    high = low.copy()
    high[40:80] = 1.0  # a second seed that got 20 more groups right
    boot = ClusteredBootstrap(domains, clusters)
    pooled = boot.accuracy(np.stack([low, high]))["d"]
    assert pooled.estimate == pytest.approx(0.6)
    one = boot.accuracy(low)["d"]
    assert (pooled.high - pooled.low) > (one.high - one.low)
    assert pooled.low < 0.45 and pooled.high > 0.75
    with pytest.raises(ValueError, match="per-pair values"):
        boot.accuracy(low[:10])


def test_best_baseline_is_picked_per_domain_and_compared_pairwise() -> None:
    train, test = length_data(40, 0), length_data(30, 1)
    baselines = fit_baselines(train).correct(test)
    domains = [p.domain for p in test]
    best, composite = best_per_domain({"longer_wins": baselines["longer_wins"],
                                       "length_rule": baselines["length_rule"]}, domains)
    assert best == {"terse": "length_rule", "verbose": "longer_wins"}  # ties keep the first listed
    assert composite.mean() == 1.0
    model = np.array([1.0 if p.domain == "verbose" else 0.5 for p in test])
    out = compare_systems(test, {"m": model, "ref": np.ones(len(test))}, baselines, reference="ref",
                          config=BootstrapConfig(resamples=500))
    m = out["models"]["m"]
    assert m["accuracy"]["average"]["estimate"] == 0.75
    assert m["vs_best_baseline"]["terse"]["estimate"] == -0.5
    assert m["vs_best_baseline"]["average"]["claim"].startswith("best baseline beats m")
    assert m["vs_ref"]["verbose"]["claim"].startswith("no difference shown")
    assert "vs_ref" not in out["models"]["ref"]
    assert out["bootstrap"]["groups"] == {"terse": 30, "verbose": 30}
