"""rewardroute: route to the expert.

Lightweight domain-robust reward models (single, MoRE, RODOS, ARLISS) and
reward-guided routing of queries across LLMs (Zooter).

    from rewardroute import load_reward_model, load_router
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_reward_model", "load_router", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: `import rewardroute` must not import torch (the CLI's --help stays fast).
    if name in ("load_reward_model", "load_router"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'rewardroute' has no attribute {name!r}")
