"""POST /v1/rewards: score (prompt, response) pairs with a configured reward model.

Each configured model gets a `MicroBatcher`: the pairs of concurrent calls (an RLHF trainer
sends many at once) are scored in one forward pass, in a one-thread executor off the event
loop. Any architecture behind `reward.load_model` works (single, more, rodos, arliss); routed
ones also report the domain their router picked and its probabilities.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from ..data.schemas import Prompt
from ..reward.base import RewardModel
from ..validation import clean_text
from .batcher import BatcherClosed, MicroBatcher, RowError
from .config import RewardSettings
from .errors import APIError
from .metrics import ServeMetrics
from .precision import device_type_of, inference
from .schemas import RewardDatum, RewardsRequest, RewardsResponse, RewardUsage


@dataclass
class Scored:
    reward: float | None
    domain: str | None
    domain_probs: dict[str, float] | None


class RewardService:
    """One reward model with its batcher."""

    def __init__(self, name: str, model: RewardModel, settings: RewardSettings, executor: Executor,
                 metrics: ServeMetrics):
        self.name = name
        self.model = model
        self.domains = list(model.config.domains)
        self.precision = settings.precision
        self.max_batch = settings.max_batch
        self.batcher: MicroBatcher[tuple[Prompt, str], Scored] = MicroBatcher(
            self._score, executor, max_batch=settings.max_batch, window_s=settings.batch_window_ms / 1000,
            on_batch=lambda n: metrics.reward_batch.observe(n, model=name))

    def _score(self, pairs: list[tuple[Prompt, str]]) -> list[Scored]:
        with inference(self.precision, device_type_of(self.model)):
            out = self.model.score([p for p, _ in pairs], [r for _, r in pairs], batch_size=max(1, len(pairs)),
                                   return_output=True)
        rewards = out.rewards.tolist()
        probs = out.domain_probs.tolist() if out.domain_probs is not None else None
        results = []
        for i, r in enumerate(rewards):
            dp = None
            if probs is not None:
                names = self.domains if len(self.domains) == len(probs[i]) else [f"expert-{k}" for k in range(len(probs[i]))]
                dp = {n: float(p) for n, p in zip(names, probs[i])}
            results.append(Scored(r if math.isfinite(r) else None, max(dp, key=dp.get) if dp else None, dp))
        return results

    def warm_up(self) -> None:
        self._score([("Hello?", "Hi! How can I help?")])

    async def score(self, pairs: Sequence[tuple[Prompt, str]]) -> list[Scored]:
        """Scores in input order. A call larger than one forward pass is split into `max_batch`
        slices that queue like separate calls (other callers' pairs are not held up behind it);
        a RowError names the item's index in the whole call."""
        pairs = list(pairs)
        if len(pairs) <= self.max_batch:
            return await self.batcher.submit(pairs)

        async def slice_at(start: int) -> list[Scored]:
            try:
                return await self.batcher.submit(pairs[start:start + self.max_batch])
            except RowError as e:
                raise RowError(start + e.index, e.cause) from None

        parts = await asyncio.gather(*(slice_at(s) for s in range(0, len(pairs), self.max_batch)))
        return [s for part in parts for s in part]

    async def close(self) -> None:
        await self.batcher.close()


def _clean_prompt(prompt: Prompt) -> Prompt:
    if isinstance(prompt, str):
        return clean_text(prompt)
    return [m.model_copy(update={"content": clean_text(m.content)}) for m in prompt]


def reward_service(services: dict[str, RewardService], name: str, param: str = "model") -> RewardService:
    service = services.get(name)
    if service is None:
        raise APIError(404, f"reward model '{name}' does not exist; configured: {sorted(services)}",
                       param=param, code="model_not_found")
    return service


async def score_pairs(service: RewardService, pairs: list[tuple[Prompt, str]], settings: RewardSettings,
                      metrics: ServeMetrics, field: str = "input") -> list[Scored]:
    """Score a call's pairs: the cap, cleaning, and failures as the client's errors (shared by
    /v1/rewards and OpenRLHF's /get_reward)."""
    if len(pairs) > settings.max_inputs:
        raise APIError(400, f"{field}: at most {settings.max_inputs} items per call (rewards.max_inputs), "
                            f"got {len(pairs)}", param=field, code="too_many_inputs")
    pairs = [(_clean_prompt(p), clean_text(r)) for p, r in pairs]
    try:
        scored = await service.score(pairs)
    except RowError as e:  # this item failed alone: the other calls of its batch were answered
        raise APIError(400, f"{field}[{e.index}]: the reward model could not score this item "
                            f"({type(e.cause).__name__})", param=f"{field}[{e.index}]", code="unscorable_input") from None
    except BatcherClosed:
        raise APIError(503, "the server is shutting down", code="shutting_down") from None
    metrics.reward_inputs.inc(len(scored), model=service.name)
    return scored


async def handle_rewards(req: RewardsRequest, services: dict[str, RewardService], settings: RewardSettings,
                         metrics: ServeMetrics) -> RewardsResponse:
    service = reward_service(services, req.model)
    scored = await score_pairs(service, [(item.prompt, item.response) for item in req.input], settings, metrics)
    data = [RewardDatum(index=i, reward=s.reward, domain=s.domain, domain_probs=s.domain_probs)
            for i, s in enumerate(scored)]
    return RewardsResponse(model=req.model, data=data, usage=RewardUsage(inputs=len(data)))
