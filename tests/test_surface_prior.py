"""The surface prior (RewardTrainingConfig.surface_prior): training adds the surface regression's
log-odds to every margin, so the network learns only what the surface features miss, and the
epoch is chosen on the sum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rewardroute.data.schemas import render_prompt
from rewardroute.eval.baselines import fit_baselines
from rewardroute.reward.base import RewardModel, RewardModelConfig, RewardOutput
from rewardroute.reward.end_to_end import TrainedEndToEnd
from rewardroute.reward.reward_config import RewardTrainingConfig


class LengthModel(TrainedEndToEnd, RewardModel):
    """reward = w * characters / 100 + b: one weight that sees length, one that cancels in margins."""

    arch = "length-toy"

    def __init__(self, w: float = 0.0):
        super().__init__(RewardModelConfig(arch=self.arch))
        self.w = nn.Parameter(torch.tensor(w))
        self.b = nn.Parameter(torch.tensor(0.0))

    def forward(self, prompts, responses, domains=None) -> RewardOutput:
        chars = torch.tensor([len(r) / 100 for r in responses])
        return RewardOutput(rewards=self.w * chars + self.b)


def test_surface_margin_is_the_regressions_log_odds(toy_pairs):
    fitted = fit_baselines(toy_pairs)
    margin = fitted.surface_margin(toy_pairs)
    correct = fitted.correct(toy_pairs)["surface_logreg"]
    assert margin.shape == (len(toy_pairs),)
    assert np.array_equal(correct, np.where(margin > 0, 1.0, np.where(margin == 0, 0.5, 0.0)))
    assert (margin > 1).all()  # the chosen toy answers are longer and wordier: confidently explained


def _pair_loss(model: LengthModel, pairs, offset: float):
    model.zero_grad()
    loss, stats = model.pair_loss([render_prompt(p.prompt) for p in pairs], [p.chosen for p in pairs],
                                  [p.rejected for p in pairs], offset=torch.full((len(pairs),), offset))
    loss.backward()
    return loss.item(), model.w.grad.item(), stats


def test_a_pair_the_prior_already_explains_teaches_nothing(toy_pairs):
    model = LengthModel(w=0.0)
    loss0, grad0, _ = _pair_loss(model, toy_pairs, 0.0)
    assert loss0 == pytest.approx(np.log(2), abs=1e-6) and grad0 < 0  # no prior: push w up (longer wins)
    loss_hi, grad_hi, stats = _pair_loss(model, toy_pairs, 30.0)
    assert loss_hi < 1e-9 and abs(grad_hi) < 1e-9 and stats["acc"] == 1.0
    loss_lo, grad_lo, _ = _pair_loss(model, toy_pairs, -30.0)  # the prior is confidently wrong
    assert loss_lo == pytest.approx(30.0, rel=1e-3) and grad_lo < grad0  # the network must outweigh it


def test_the_epoch_is_chosen_on_the_sum_of_network_and_prior(toy_pairs):
    """A network whose margins are all 0 scores 0.5 on valid alone; with the prior the valid
    accuracy is the surface regression's."""
    args = RewardTrainingConfig(epochs=1, batch_size=8, lr=1e-3, resume=False)

    class Constant(LengthModel):
        def forward(self, prompts, responses, domains=None) -> RewardOutput:
            return RewardOutput(rewards=self.b.expand(len(responses)) + 0 * self.w)

    alone = Constant().fit(toy_pairs, toy_pairs, args)
    with_prior = Constant().fit(toy_pairs, toy_pairs, args.model_copy(update={"surface_prior": True}))
    surface = fit_baselines(toy_pairs).correct(toy_pairs)["surface_logreg"].mean()
    assert alone.best_metric == 0.5
    assert with_prior.best_metric == pytest.approx(surface) and surface > 0.9
