"""The routing proxy behind POST /v1/chat/completions.

1. decide: a backend's own name goes straight to it; `rewardroute[:policy]` asks the router
   (see `serve.router_service` for the routing text) and ranks the backends under the policy; a
   conversation id pins the conversation to the backend that answered it first.
2. forward: the client's JSON goes to the first backend whose circuit breaker lets it through,
   unchanged except for `model`. When a backend fails for good (after its own retries), the
   next one in the ranking is tried, up to `resilience.max_attempts`. A streaming answer can
   still fall back until its first chunk has reached the client; after that, a broken stream
   ends with an SSE error event.
3. answer: the backend's answer with `model` set to the backend's name (in every SSE chunk
   too), and headers saying what was chosen and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from fastapi.responses import Response, StreamingResponse

from ..backends.client import BackendError, BackendPool
from .batcher import BatcherClosed, RowError
from .breaker import CircuitBreaker
from .config import ServeConfig
from .errors import APIError
from .metrics import ServeMetrics
from ..router.policy import PolicySpec, rank
from .router_service import QueryRouter, routing_text
from .schemas import ChatCompletionRequest
from .sse import ProxiedStream, SSERewriter, sse_error_event
from .sticky import ConversationStore

log = logging.getLogger("rewardroute.serve")

# A backend answering these blames the request itself: the client hears it, no fallback, and
# the backend's breaker does not count it.
CLIENT_FAULT_STATUS = frozenset({400, 413, 422})

HEADER_MODEL = "x-rewardroute-model"
HEADER_ROUTE = "x-rewardroute-route"
HEADER_POLICY = "x-rewardroute-policy"
HEADER_PROBS = "x-rewardroute-probs"
HEADER_FALLBACK = "x-rewardroute-fallback-from"


@dataclass
class Decision:
    order: list[str]  # backends to try, best first
    reason: str  # routed | sticky | explicit
    policy: str | None = None
    probs: dict[str, float] | None = None
    failed: list[str] = field(default_factory=list)  # backends that failed this request

    def headers(self, backend: str) -> dict[str, str]:
        route = "fallback" if self.failed else self.reason
        out = {HEADER_MODEL: backend, HEADER_ROUTE: route}
        if self.policy:
            out[HEADER_POLICY] = self.policy
        if self.probs is not None:
            out[HEADER_PROBS] = json.dumps({k: round(v, 4) for k, v in self.probs.items()}, separators=(",", ":"))
        if self.failed:
            out[HEADER_FALLBACK] = ",".join(self.failed)
        return out


class ChatProxy:
    def __init__(self, config: ServeConfig, pool: BackendPool, router: QueryRouter,
                 breakers: Mapping[str, CircuitBreaker], store: ConversationStore, metrics: ServeMetrics):
        self.config = config
        self.pool = pool
        self.router = router
        self.breakers = breakers
        self.store = store
        self.metrics = metrics
        self.backend_names = {b.name for b in config.backends}
        self.default_policy = PolicySpec(config.router.policy, config.router.lam)
        self.costs = router.costs({b.name: b.cost_per_1k_tokens for b in config.backends})

    # -- decide -------------------------------------------------------------------------------
    def _policy(self, model: str) -> PolicySpec:
        try:
            routellm = PolicySpec.from_routellm_name(model, self.config.router.name)
        except ValueError as e:
            raise APIError(400, f"model: {e}", param="model", code="invalid_value") from None
        if routellm is not None:
            return routellm
        name, sep, spec = model.partition(":")
        if name != self.config.router.name:
            choices = [self.config.router.name, f"{self.config.router.name}:<policy>",
                       f"router-{self.config.router.name}-<share>", *sorted(self.backend_names)]
            raise APIError(404, f"model '{model}' does not exist; use one of {choices}", param="model",
                           code="model_not_found")
        try:
            return PolicySpec.parse(spec if sep else None, self.default_policy)
        except ValueError as e:
            raise APIError(400, f"model: {e}", param="model", code="invalid_value") from None

    async def decide(self, req: ChatCompletionRequest, messages: list[dict[str, Any]],
                     conversation: str | None) -> Decision:
        if req.model in self.backend_names:
            return Decision([req.model], "explicit")
        policy = self._policy(req.model)
        s = self.config.router
        text = routing_text(messages, context_messages=s.context_messages, context_chars=s.context_chars,
                            first_turn=conversation is not None)
        t0 = time.perf_counter()
        try:
            probs, cached = await self.router.probs(text)
        except RowError as e:  # this text failed alone: the requests batched with it were routed
            raise APIError(400, f"messages: the router could not read this conversation ({type(e.cause).__name__})",
                           param="messages", code="unroutable_input") from None
        except BatcherClosed:
            raise APIError(503, "the server is shutting down", code="shutting_down") from None
        self.metrics.routing_latency.observe(time.perf_counter() - t0, cache="hit" if cached else "miss")
        try:
            threshold = self.router.threshold(policy.share) if policy.name == "threshold" else None
            ranked = rank(probs, policy, self.costs, threshold)
        except ValueError as e:
            raise APIError(400, f"model: {e}", param="model", code="invalid_value") from None
        order = [self.router.backends[i] for i in ranked]
        reason = "routed"
        pinned = self.store.get(conversation) if conversation else None
        if pinned is not None and pinned in order:
            order = [pinned] + [b for b in order if b != pinned]
            reason = "sticky"
        return Decision(order, reason, policy.label, dict(zip(self.router.backends, np.asarray(probs).tolist())))

    # -- forward ------------------------------------------------------------------------------
    async def forward(self, body: dict[str, Any], stream: bool, decision: Decision,
                      conversation: str | None) -> Response:
        attempts, skipped, failures = 0, [], []
        for name in decision.order:
            if attempts >= self.config.resilience.max_attempts:
                break
            breaker = self.breakers[name]
            trial = breaker.state == "half_open"  # allow() makes this request the trial
            if not breaker.allow():
                skipped.append(name)
                continue
            attempts += 1
            # Asked again after the wait for a concurrency slot and before each retry: a request
            # queued behind a backend that has since failed moves on instead of trying it.
            gate = {"admit": lambda b=breaker, t=trial: t or b.state == "closed" or b.allow(),
                    "on_failure": lambda n=name: self._record_failure(n)}
            try:
                if stream:
                    response = await self._stream(name, body, decision, gate)
                else:
                    response = await self._complete(name, body, decision, gate)
            except BackendError as e:
                if e.kind == "unavailable":
                    attempts -= 1
                    skipped.append(name)
                    continue
                if e.kind == "http" and e.status in CLIENT_FAULT_STATUS:
                    breaker.record_success()  # it answered: it is up
                    self.metrics.backend_requests.inc(backend=name, outcome="client_error")
                    raise APIError(e.status, f"backend '{name}' rejected the request: {e.detail}",
                                   code="backend_rejected_request") from None
                if not e.counted:
                    self._record_failure(name)
                # BackendError text is redacted of the backend's key; request bodies are never logged.
                log.warning("backend '%s' failed: %s", name, e.short)
                self.metrics.backend_requests.inc(backend=name, outcome="error")
                self.metrics.backend_errors.inc(backend=name, kind=e.kind)
                failures.append((name, e))
                decision.failed.append(name)
                continue
            breaker.record_success()
            self.metrics.backend_requests.inc(backend=name, outcome="ok")
            route = "fallback" if decision.failed else decision.reason
            self.metrics.routing_decisions.inc(backend=name, reason=route, policy=decision.policy or "none")
            if conversation and decision.reason != "explicit":
                self.store.pin(conversation, name)
            return response
        if not failures:
            wait = min((self.breakers[n].retry_in() for n in skipped), default=1.0)
            raise APIError(503, f"no backend available: the circuit breaker is open for {skipped}",
                           code="backend_unavailable", headers={"Retry-After": str(max(1, round(wait)))})
        detail = "; ".join(f"{n}: {e.short}" for n, e in failures)
        all_timeouts = all(e.kind == "timeout" for _, e in failures)
        raise APIError(504 if all_timeouts else 502, f"all backends tried failed ({detail})",
                       code="backend_timeout" if all_timeouts else "backend_error")

    def _record_failure(self, name: str) -> None:
        """One failed attempt at `name`, for its breaker (retries count one by one)."""
        breaker = self.breakers[name]
        was_open = breaker.state != "closed"
        breaker.record_failure()
        if breaker.state != "closed" and not was_open:
            log.warning("circuit breaker open for backend '%s': skipped for %gs", name, breaker.reset_after_s)

    async def _complete(self, name: str, body: dict[str, Any], decision: Decision, gate: dict) -> Response:
        t0 = time.perf_counter()
        status, raw = await self.pool[name].post_raw(body, **gate)
        self.metrics.backend_latency.observe(time.perf_counter() - t0, backend=name)
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError:
            raise BackendError(name, "bad_response", f"not a JSON object: {raw[:80]!r}") from None
        data["model"] = name
        return Response(json.dumps(data, ensure_ascii=False).encode(), status_code=status,
                        media_type="application/json", headers=decision.headers(name))

    async def _stream(self, name: str, body: dict[str, Any], decision: Decision, gate: dict) -> StreamingResponse:
        """Open the backend's stream and read up to its first data event (failures until then
        may still fall back; `timeout_s` bounds the wait for it), then hand the rest to a
        StreamingResponse."""
        client = self.pool[name]
        stack = contextlib.AsyncExitStack()
        t0 = time.perf_counter()
        try:
            resp = await stack.enter_async_context(client.open_raw(body, stream=True, **gate))
            chunks = resp.aiter_bytes()
            stack.push_async_callback(chunks.aclose)  # closed before the response (LIFO)
            rewriter = SSERewriter(name)
            try:
                async with asyncio.timeout(client.config.timeout_s):
                    head = await self._head(name, chunks, rewriter)
            except TimeoutError:
                raise BackendError(name, "timeout", f"no first chunk within {client.config.timeout_s:g}s") from None
            if rewriter.error is not None:
                raise BackendError(name, "http", f"error in stream: {rewriter.error}")
        except BaseException:
            await stack.aclose()
            raise
        self.metrics.backend_latency.observe(time.perf_counter() - t0, backend=name)
        return ProxiedStream(self._rest(name, head, chunks, rewriter, stack), stack.aclose,
                              media_type="text/event-stream",
                              headers={**decision.headers(name), "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})

    @staticmethod
    async def _head(name: str, chunks: AsyncIterator[bytes], rewriter: SSERewriter) -> list[bytes]:
        """The stream's events up to and including its first data event."""
        head: list[bytes] = []
        while not any(SSERewriter.has_data(ev) for ev in head):
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                head.append(rewriter.flush())
                if not any(SSERewriter.has_data(ev) for ev in head):
                    raise BackendError(name, "bad_response", "the stream ended before its first chunk") from None
                break
            except httpx.HTTPError as e:
                kind = "timeout" if isinstance(e, httpx.TimeoutException) else "connect"
                raise BackendError(name, kind, f"the stream broke before its first chunk ({type(e).__name__})") \
                    from None
            head += rewriter.feed(chunk)
        return head

    async def _rest(self, name: str, head: list[bytes], chunks: AsyncIterator[bytes], rewriter: SSERewriter,
                    stack: contextlib.AsyncExitStack) -> AsyncIterator[bytes]:
        try:
            for event in head:
                if event:
                    yield event
            try:
                async for chunk in chunks:
                    for event in rewriter.feed(chunk):
                        yield event
                tail = rewriter.flush()
                if tail:
                    yield tail
            except httpx.HTTPError as e:
                # Part of the answer is out: no fallback now. Tell the client in-band.
                log.warning("backend '%s' broke off a stream (%s)", name, type(e).__name__)
                self.breakers[name].record_failure()
                self.metrics.backend_errors.inc(backend=name, kind="stream_broken")
                yield sse_error_event(f"backend '{name}' broke off the stream ({type(e).__name__})")
        finally:
            await stack.aclose()
