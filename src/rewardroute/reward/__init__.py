"""Reward models: one interface, several architectures, one registry."""

from .base import RewardModel, RewardModelConfig, RewardOutput
from .checkpoint import load_model, save_model
from .registry import REWARD_MODELS, get_arch

__all__ = ["RewardModel", "RewardModelConfig", "RewardOutput", "REWARD_MODELS", "get_arch",
           "load_model", "save_model"]
