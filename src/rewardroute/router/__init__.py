"""The expert router: a text classifier over experts (domains, reward adapters or LLMs),
trained on a target distribution over them. RODOS, ARLISS and Zooter all use it."""

from .model import ExpertRouter, load_router, save_router
from .router_config import RouterConfig, RouterTrainingConfig
from .router_trainer import fit_router, one_hot

__all__ = ["ExpertRouter", "RouterConfig", "RouterTrainingConfig", "fit_router", "one_hot",
           "load_router", "save_router"]
