"""The training loop shared by reward models and routers."""

from .args import TrainingArgs
from .loop import TrainResult, train_loop

__all__ = ["TrainingArgs", "TrainResult", "train_loop"]
