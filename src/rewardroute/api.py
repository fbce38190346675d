"""The Python API: load a reward model or a router from its folder and use it in three lines.

    from rewardroute import load_reward_model, load_router
    rm = load_reward_model("runs/rm")
    rm.score(["What is 2+2?"], ["4"])                 # -> [1.37]
    load_router("runs/zooter").route(["Prove that sqrt(2) is irrational"])   # -> ["gpt-4"]

Prompts are strings or OpenAI-style message lists (dicts or `Message`s), as everywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data.schemas import as_prompt


@dataclass(frozen=True)
class ScoredResponse:
    """One scored (prompt, response): the reward, and for routed models the domain it went to."""

    reward: float
    domain: str | None = None
    domain_probs: dict[str, float] | None = None  # labelled with the model's domain names


class RewardScorer:
    """A loaded reward model of any architecture, scoring in input order."""

    def __init__(self, model: Any):
        self.model = model

    @property
    def arch(self) -> str:
        return self.model.arch

    @property
    def domains(self) -> list[str]:
        return list(self.model.config.domains)

    def score(self, prompts: Sequence[Any], responses: Sequence[str], *, batch_size: int = 32) -> list[float]:
        """One reward per (prompt, response); higher is better."""
        return self.model.score([as_prompt(p) for p in prompts], list(responses), batch_size=batch_size).tolist()

    def score_detailed(self, prompts: Sequence[Any], responses: Sequence[str], *,
                       batch_size: int = 32) -> list[ScoredResponse]:
        """Rewards with the routed domain and its probabilities (None for unrouted models)."""
        out = self.model.score([as_prompt(p) for p in prompts], list(responses), batch_size=batch_size,
                               return_output=True)
        rewards = out.rewards.tolist()
        if out.domain_probs is None:
            return [ScoredResponse(r) for r in rewards]
        names = self.domains
        rows = out.domain_probs.tolist()
        return [ScoredResponse(r, names[max(range(len(p)), key=p.__getitem__)], dict(zip(names, p)))
                for r, p in zip(rewards, rows)]


class Router:
    """A loaded router (Zooter over LLMs, or a domain router): probabilities and decisions."""

    def __init__(self, impl: Any):
        self.impl = impl

    @property
    def experts(self) -> list[str]:
        return list(self.impl.experts)

    def probs(self, queries: Sequence[Any]) -> list[dict[str, float]]:
        """p(expert | query) for each query, labelled with the expert names."""
        p = self.impl.probs([as_prompt(q) for q in queries])
        return [dict(zip(self.experts, map(float, row))) for row in p.tolist()]

    def route(self, queries: Sequence[Any]) -> list[str]:
        """The most likely expert for each query."""
        return [max(row, key=row.__getitem__) for row in self.probs(queries)]


def load_reward_model(path: str | Path) -> RewardScorer:
    """Any `rewardroute rm train` output (single, more, rodos or arliss)."""
    from .reward import load_model

    return RewardScorer(load_model(path))


def load_router(path: str | Path) -> Router:
    """A `rewardroute router train` output (Zooter), or a saved domain router."""
    from .router.interface import load_any_router

    return Router(load_any_router(path))
