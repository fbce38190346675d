"""GET /health: liveness, readiness and whether each backend answers.

A backend is reachable when `GET {base_url}/models` gets any HTTP answer below 500 within
`health.probe_timeout_s` (a 404 from an endpoint without /models still proves it is up).
Probes are cached for `health.cache_s`, since orchestrators poll health every few seconds.
Ready means the models are loaded and, when backends are configured, at least one answers.
A probe that reaches a backend whose breaker has waited out its open period counts as the
breaker's trial: the breaker closes, so health shows the recovered backend as `closed` (and
requests use it again) instead of `half_open` until some request happens to try it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

import httpx

from ..backends.config import BackendConfig
from .breaker import CircuitBreaker
from .schemas import BackendHealth


class BackendProber:
    def __init__(self, backends: Sequence[BackendConfig], http: httpx.AsyncClient, breakers: Mapping[str, CircuitBreaker],
                 *, timeout_s: float = 2.0, cache_s: float = 5.0):
        self.backends = list(backends)
        self.http = http
        self.breakers = breakers
        self.timeout_s = timeout_s
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, dict]] = {}

    async def _probe(self, b: BackendConfig) -> dict:
        cached = self._cache.get(b.name)
        if cached is not None and time.monotonic() - cached[0] < self.cache_s:
            return cached[1]
        headers = {"Authorization": f"Bearer {b.api_key()}"} if b.api_key() else {}
        t0 = time.perf_counter()
        try:
            resp = await self.http.get(f"{b.base_url}/models", headers=headers, timeout=self.timeout_s)
            result = {"reachable": resp.status_code < 500, "status_code": resp.status_code,
                      "latency_ms": round(1000 * (time.perf_counter() - t0), 2),
                      "error": None if resp.status_code < 500 else f"HTTP {resp.status_code}"}
        except httpx.HTTPError as e:  # the exception's text never holds our headers
            result = {"reachable": False, "status_code": None, "latency_ms": None, "error": type(e).__name__}
        self._cache[b.name] = (time.monotonic(), result)
        return result

    async def probe_all(self) -> dict[str, BackendHealth]:
        results = await asyncio.gather(*(self._probe(b) for b in self.backends))
        for b, r in zip(self.backends, results):
            breaker = self.breakers[b.name]
            # Only a probe made after the breaker opened proves the backend came back.
            if r["reachable"] and breaker.state == "half_open" and self._cache[b.name][0] >= breaker.opened_at:
                breaker.record_success()
        return {b.name: BackendHealth(**r, breaker=self.breakers[b.name].state)
                for b, r in zip(self.backends, results)}
