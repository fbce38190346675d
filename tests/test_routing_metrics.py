"""Routing metrics on small hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from rewardroute.eval import routing_metrics as rm
from rewardroute.router.policy import calibrate_threshold, cost_aware_policy, threshold_policy

S = np.array([[1.0, 0.0, 0.2],
              [0.0, 1.0, 0.2],
              [1.0, 1.0, 0.2],
              [0.0, 0.0, 0.2]])


def test_mean_oracle_random_and_gap():
    assert rm.mean_score(S, [0, 1, 0, 2]) == pytest.approx((1 + 1 + 1 + 0.2) / 4)
    assert rm.oracle_score(S) == pytest.approx((1 + 1 + 1 + 0.2) / 4)
    assert rm.random_score(S) == pytest.approx(S.mean())
    assert rm.gap_recovered(0.6, 0.5, 0.9) == pytest.approx(0.25)
    assert rm.gap_recovered(0.6, 0.9, 0.9) is None  # no gap to recover


def test_task_rank_and_uplift():
    s = np.array([[1.0, 0.0, 0.5], [1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 1.0, 0.5]])
    tags = [["a"], ["a"], ["b"], ["b"]]
    per_model = {f"m{j}": rm.task_means(s[:, j], tags) for j in range(3)}
    assert per_model["m0"] == {"a": 1.0, "b": 0.0}
    methods = {"router": rm.task_means(rm.chosen_scores(s, [0, 0, 2, 1]), tags),
               "best_single": rm.task_means(s[:, 0], tags)}
    assert methods["router"] == {"a": 1.0, "b": 0.75}
    mtr = rm.mean_task_rank(methods, per_model)
    assert mtr["router"] == pytest.approx((1 + 2) / 2)  # first on a; m1 beats it on b
    assert mtr["best_single"] == pytest.approx((1 + 3) / 2)  # last of three on b
    assert rm.uplift(methods, methods["best_single"]) == {"router": 0.5, "best_single": 0.0}


def test_threshold_sweep_apgr_cpt_auc():
    # weak = model 1, strong = model 0; p(strong) orders queries 0, 2, 1, 3
    scores = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    share, quality = rm.threshold_sweep(np.array([0.9, 0.1, 0.8, 0.05]), scores, strong=0, weak=1)
    assert share.tolist() == [0, 0.25, 0.5, 0.75, 1.0]
    assert quality.tolist() == pytest.approx([0.75, 1.0, 1.0, 0.75, 0.75])
    weak, strong = scores[:, 1].mean(), scores[:, 0].mean()
    assert weak == strong == 0.75
    assert rm.apgr(share, quality, weak, strong) is None  # PGR is undefined without a gap
    assert rm.auc(share, quality) == pytest.approx(0.25 * (0.875 + 1 + 0.875 + 0.75))
    # a case with a gap: weak 0.25, strong 0.75, a perfect router reaches strong at 50% calls
    s2 = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    x, y = rm.threshold_sweep(np.array([0.9, 0.8, 0.1, 0.0]), s2, strong=0, weak=1)
    assert y.tolist() == pytest.approx([0.25, 0.5, 0.75, 0.75, 0.75])
    assert rm.cpt(x, y, 0.25, 0.75, 0.5) == pytest.approx(0.25)
    assert rm.cpt(x, y, 0.25, 0.75, 0.8) == pytest.approx(0.25 + 0.3 * 0.25 / 0.5)
    assert rm.apgr(x, y, 0.25, 0.75) == pytest.approx(0.25 * (0.25 + 0.75 + 1 + 1))


def test_hull_and_aiq():
    hx, hy = rm.nondecreasing_hull([0, 1, 2, 3, 1.5], [0.2, 0.5, 0.6, 0.55, 0.3])
    assert hx.tolist() == [0, 1, 2] and hy.tolist() == [0.2, 0.5, 0.6]
    # area under 0.2->0.5 on [0,1], 0.5->0.6 on [1,2], flat 0.6 on [2,3]; divided by 3
    assert rm.aiq([0, 1, 2, 3, 1.5], [0.2, 0.5, 0.6, 0.55, 0.3], 0, 3) == pytest.approx((0.35 + 0.55 + 0.6) / 3, abs=1e-4)


def test_policies():
    p = np.array([[0.6, 0.4], [0.45, 0.55]])
    assert cost_aware_policy(p, np.array([1.0, 0.1]), 0.0).tolist() == [0, 1]
    assert cost_aware_policy(p, np.array([1.0, 0.1]), 0.5).tolist() == [1, 1]
    assert cost_aware_policy(p, np.array([1.0, 0.1]), float("inf")).tolist() == [1, 1]
    ps = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    t = calibrate_threshold(ps, 0.3)
    assert (threshold_policy(ps, t, strong=1, weak=0) == 1).mean() == pytest.approx(0.3)
    assert (threshold_policy(ps, calibrate_threshold(ps, 0.0), 1, 0) == 1).mean() == 0.0
    assert (threshold_policy(ps, calibrate_threshold(ps, 1.0), 1, 0) == 1).mean() == 1.0


def test_curve_tolerates_rounding_at_the_weak_end():
    # the all-weak point of a cost sweep can land a rounding error above x = 0
    assert rm.apgr([1e-17, 1.0], [0.2, 0.4], 0.2, 0.4) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        rm.auc([0.3, 1.0], [0.2, 0.4])
