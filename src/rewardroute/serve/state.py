"""What the running server shares between requests: loaded models, the backend pool, the
breakers, the conversation store, the batchers. Built when the app starts, closed when it stops.

The router and the reward models each get a one-thread executor, off the event loop, so a
large reward batch never delays routing.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..backends.client import BackendPool, RetryPolicy
from .breaker import STATE_VALUE, CircuitBreaker
from .chat import ChatProxy
from .config import ServeConfig
from .health import BackendProber
from .metrics import ServeMetrics
from .rewards import RewardService
from .router_service import LoadedRouter, QueryRouter, load_expert_router
from .sticky import ConversationStore


@dataclass
class LoadedModels:
    """What takes seconds to load; tests load it once and share it between apps."""

    router: LoadedRouter | None = None
    reward_models: dict[str, Any] = field(default_factory=dict)  # name -> RewardModel


def load_models(config: ServeConfig) -> LoadedModels:
    from ..reward import load_model

    from ..runtime import resolve_device

    device = resolve_device(config.server.device)
    router = (load_expert_router(config.router.path, device, int8=config.router.precision == "int8")
              if config.router.path is not None else None)
    return LoadedModels(router, {m.name: load_model(m.path).to(device) for m in config.rewards.models})


class ServeState:
    """Everything the endpoints share, built when the app starts."""

    def __init__(self, config: ServeConfig, models: LoadedModels, transport: httpx.AsyncBaseTransport | None,
                 metrics: ServeMetrics):
        self.config = config
        self.started = int(time.time())
        self.metrics = metrics
        r = config.resilience
        self.breakers = {b.name: CircuitBreaker(r.failure_threshold, r.reset_after_s) for b in config.backends}
        self.metrics.registry.before_render.append(self._breaker_gauges)
        # Keep-alive connections for every concurrent request (httpx keeps 20 by default).
        transport = transport or httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=None,
                                                                              max_keepalive_connections=256))
        self.pool = BackendPool(config.backends, transport=transport,
                                retry=RetryPolicy(base_s=r.retry_base_s, cap_s=r.retry_cap_s))
        self.router_executor = ThreadPoolExecutor(1, thread_name_prefix="rewardroute-router")
        self.reward_executor = ThreadPoolExecutor(1, thread_name_prefix="rewardroute-rewards")
        self.router: QueryRouter | None = None
        if config.backends:
            loaded = models.router if config.router.path is not None else None
            self.router = QueryRouter(config.router, [b.name for b in config.backends], self.router_executor,
                                      on_batch=lambda n: self.metrics.router_batch.observe(n), loaded=loaded)
        self.rewards = {name: RewardService(name, model, config.rewards, self.reward_executor, self.metrics)
                        for name, model in models.reward_models.items()}
        self.store = ConversationStore(config.stickiness.max_conversations, config.stickiness.ttl_s)
        self.proxy: ChatProxy | None = None
        self.prober: BackendProber | None = None

    def _breaker_gauges(self) -> None:
        for name, b in self.breakers.items():
            self.metrics.breaker_state.set(STATE_VALUE[b.state], backend=name)

    async def start(self) -> None:
        await self.pool.__aenter__()
        loop = asyncio.get_running_loop()
        if self.router is not None:
            await loop.run_in_executor(self.router_executor, self.router.warm_up)
            self.proxy = ChatProxy(self.config, self.pool, self.router, self.breakers, self.store, self.metrics)
            self.prober = BackendProber(self.config.backends, self.pool.http, self.breakers,
                                        timeout_s=self.config.health.probe_timeout_s,
                                        cache_s=self.config.health.cache_s)
        for service in self.rewards.values():
            await loop.run_in_executor(self.reward_executor, service.warm_up)

    async def close(self) -> None:
        if self.router is not None:
            await self.router.close()
        for service in self.rewards.values():
            await service.close()
        await self.pool.__aexit__(None, None, None)
        self.router_executor.shutdown(wait=False, cancel_futures=True)
        self.reward_executor.shutdown(wait=False, cancel_futures=True)
