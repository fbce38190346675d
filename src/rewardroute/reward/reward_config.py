"""Training settings for reward models (`rm train`)."""

from __future__ import annotations

from pydantic import Field

from ..training.args import TrainingArgs


class RewardTrainingConfig(TrainingArgs):
    """Bradley-Terry training. Defaults were chosen on the valid split (see README):
    lr 1e-4 beat 5e-5 (macro accuracy 0.654 vs 0.644, 2 epochs over 1,000 mixed pairs,
    256 tokens, MiniLM full fine-tuning)."""

    lr: float = Field(default=1e-4, gt=0)
    head_lr: float | None = Field(default=None, gt=0)  # heads learn faster than a pretrained body
    max_pairs: int | None = Field(default=None, ge=1)  # cap, taken evenly across domains
    eval_max_pairs: int | None = Field(default=None, ge=1)  # cap on valid pairs scored each epoch
    # Product-of-experts training: each pair's margin gets the surface-feature regression's log-odds
    # (fitted on these training pairs, eval/baselines.py) added, so the network learns what lengths
    # and other surface features do not explain; the epoch is chosen on the sum's valid accuracy.
    # The saved model is the network alone: a reward less tied to length (see README).
    surface_prior: bool = False
