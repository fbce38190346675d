"""Architecture name -> RewardModel class. Adding an architecture is one module plus one line."""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from .base import RewardModel

# name -> "module:Class"; imported on first use so `rewardroute --help` stays fast.
REWARD_MODELS: dict[str, str] = {
    "single": "rewardroute.reward.single:SingleRewardModel",
    "more": "rewardroute.reward.more:MoRERewardModel",
    "rodos": "rewardroute.reward.rodos:RodosRewardModel",
    "arliss": "rewardroute.reward.arliss:ArlissRewardModel",
}


def get_arch(name: str) -> type[RewardModel]:
    try:
        target = REWARD_MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown architecture '{name}'; choose one of {sorted(REWARD_MODELS)}") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)
