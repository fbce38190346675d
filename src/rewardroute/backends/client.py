"""An async client for OpenAI-compatible chat endpoints (vLLM, llama.cpp, Ollama, any API).

One `BackendClient` per `BackendConfig`:
  * `chat(messages)` -> `ChatResult` (non-streaming), or raises `BackendError`;
  * `stream(messages)` -> async iterator over the parsed SSE chunks (`data: {...}` lines);
  * retries with exponential backoff and full jitter on connect errors, timeouts, 429 and 5xx
    (a `Retry-After` header is honoured, capped), never on other 4xx;
  * `timeout_s` bounds each whole attempt: connect, send, and the full answer (a backend that
    trickles bytes cannot hold a request past it); a stream's first bytes count, and after
    them `stream_idle_timeout_s` bounds each wait between chunks;
  * at most `max_concurrency` requests in flight per backend (a semaphore); an `admit`
    callback, asked after the wait for a slot and before every retry, lets the caller stop
    (a circuit breaker that opened meanwhile) with kind "unavailable";
  * the API key comes from the environment variable the config names, and no error text
    ever contains it.

`BackendPool` holds the clients of several backends on one shared `httpx.AsyncClient`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ..errors import RewardRouteError
from .config import BackendConfig

ErrorKind = Literal["connect", "timeout", "http", "bad_response", "config", "unavailable"]
Admit = Callable[[], bool]
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 30.0


class BackendError(RewardRouteError):
    """A backend that failed: which one, what kind of failure, and after how many attempts."""

    def __init__(self, backend: str, kind: ErrorKind, detail: str, *, status: int | None = None,
                 attempts: int = 1):
        self.backend, self.kind, self.detail, self.status, self.attempts = backend, kind, detail, status, attempts
        self.counted = False  # already reported, attempt by attempt, to the caller's `on_failure`
        code = f" {status}" if status is not None else ""
        super().__init__(f"backend '{backend}': {kind}{code}: {detail} (after {attempts} attempt"
                         f"{'s' if attempts != 1 else ''})")

    @property
    def short(self) -> str:
        """One line for a record's `errors` field."""
        code = f" {self.status}" if self.status is not None else ""
        return f"{self.kind}{code}: {self.detail}"[:300]


@dataclass
class ChatResult:
    backend: str
    model: str
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0  # cost_per_1k_tokens x total tokens / 1000
    latency_s: float = 0.0
    finish_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff: attempt i (0-based) waits uniform(0, min(cap, base * 2**i)) ("full jitter")."""

    base_s: float = 0.5
    cap_s: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        return random.uniform(0.0, min(self.cap_s, self.base_s * 2 ** attempt))


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


class BackendClient:
    """Chat completions against one backend. Create through `BackendPool` or pass an
    `httpx.AsyncClient` you own (tests pass one with a mock transport)."""

    def __init__(self, config: BackendConfig, http: httpx.AsyncClient, *, retry: RetryPolicy | None = None):
        self.config = config
        self.http = http
        self.retry = retry or RetryPolicy()
        self.semaphore = asyncio.Semaphore(config.max_concurrency)

    @property
    def name(self) -> str:
        return self.config.name

    # -- request plumbing -------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = self.config.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _body(self, messages: Sequence[Mapping[str, str]], params: Mapping[str, Any], stream: bool) -> dict:
        body = {"model": self.config.model, "messages": [dict(m) for m in messages], **self.config.extra_body,
                **{k: v for k, v in params.items() if v is not None}}
        if stream:
            body["stream"] = True
        return body

    def _error(self, kind: ErrorKind, detail: str, *, status: int | None = None, attempts: int = 1) -> BackendError:
        return BackendError(self.name, kind, _redact(detail, self.config.api_key()), status=status, attempts=attempts)

    async def _with_retries(self, attempt_fn, admit: Admit | None = None,
                            on_failure: Callable[[], None] | None = None):
        """Run `attempt_fn()` until it succeeds or fails for good. `attempt_fn` raises
        `_Retryable` for a failure worth another try and `BackendError` for a final one.
        Each attempt is bounded by `timeout_s` as a whole; `admit()` is asked before each;
        `on_failure()` hears of each attempt that failed with a retryable failure (a circuit
        breaker counts attempts, so it opens while the first requests are still retrying).
        A final error that `on_failure` heard of has `counted` set."""
        attempts = self.config.max_retries + 1
        r: _Retryable | None = None  # the last attempt's failure
        for i in range(attempts):
            if admit is not None and not admit():
                if r is None:
                    raise self._error("unavailable", "skipped: its circuit breaker opened while this request waited",
                                      attempts=0)
                err = self._error(r.kind, f"{r.detail} (not retried: its circuit breaker opened)", status=r.status,
                                  attempts=i)
                err.counted = on_failure is not None
                raise err
            try:
                async with asyncio.timeout(self.config.timeout_s):
                    return await attempt_fn(i + 1)
            except TimeoutError:
                r = _Retryable("timeout", f"no complete answer within {self.config.timeout_s:g}s")
            except _Retryable as caught:
                r = caught
            if on_failure is not None:
                on_failure()
            if i + 1 >= attempts:
                err = self._error(r.kind, r.detail, status=r.status, attempts=i + 1)
                err.counted = on_failure is not None
                raise err
            await asyncio.sleep(self.retry.delay(i, r.retry_after))
        raise AssertionError("unreachable")

    def _timeout(self, stream: bool) -> httpx.Timeout:
        """httpx's per-operation timeouts; the attempt as a whole is bounded in `_with_retries`.
        A stream's reads wait at most the idle timeout for the next chunk."""
        return httpx.Timeout(self.config.timeout_s, read=self.config.stream_idle_timeout_s if stream else None)

    def _classify(self, exc: httpx.HTTPError, attempt: int) -> Exception:
        """A transport failure as something to raise: `_Retryable` when another try may work."""
        if isinstance(exc, httpx.TimeoutException):
            return _Retryable("timeout", f"no answer within {self.config.timeout_s:g}s ({type(exc).__name__})")
        if isinstance(exc, httpx.TransportError) and not isinstance(exc, (httpx.UnsupportedProtocol,
                                                                          httpx.InvalidURL)):
            return _Retryable("connect", f"{type(exc).__name__}: {exc}")
        return self._error("connect", f"{type(exc).__name__}: {exc}", attempts=attempt)

    def _check_status(self, resp: httpx.Response, body_text: str, attempt: int) -> None:
        if resp.status_code < 400:
            return
        detail = body_text.strip().replace("\n", " ")[:200] or resp.reason_phrase
        if resp.status_code in RETRY_STATUS:
            raise _Retryable("http", detail, status=resp.status_code, retry_after=_retry_after(resp))
        raise self._error("http", detail, status=resp.status_code, attempts=attempt)

    # -- public API -------------------------------------------------------------------------
    async def chat(self, messages: Sequence[Mapping[str, str]], **params: Any) -> ChatResult:
        """One non-streaming chat completion. `params` (max_tokens, temperature, seed, ...)
        go into the request body. Raises `BackendError` once retries are spent."""
        url = f"{self.config.base_url}/chat/completions"
        body = self._body(messages, params, stream=False)

        async def attempt(n: int) -> ChatResult:
            t0 = time.perf_counter()
            try:
                resp = await self.http.post(url, json=body, headers=self._headers(), timeout=self._timeout(False))
            except httpx.HTTPError as e:
                raise self._classify(e, n) from None
            self._check_status(resp, resp.text, n)
            return self._parse(resp, time.perf_counter() - t0, n)

        async with self.semaphore:
            return await self._with_retries(attempt)

    async def stream(self, messages: Sequence[Mapping[str, str]], **params: Any) -> AsyncIterator[dict[str, Any]]:
        """Parsed chunks of a streaming chat completion, in order, up to `data: [DONE]`.
        Failures before the first chunk are retried; a failure mid-stream raises
        `BackendError` (the caller has already forwarded part of the answer)."""
        url = f"{self.config.base_url}/chat/completions"
        body = self._body(messages, params, stream=True)
        async with self.semaphore:
            started = False
            opened: list[httpx.Response] = []

            async def attempt(n: int) -> None:
                req = self.http.build_request("POST", url, json=body, headers=self._headers(),
                                              timeout=self._timeout(True))
                try:
                    resp = await self.http.send(req, stream=True)
                except httpx.HTTPError as e:
                    raise self._classify(e, n) from None
                if resp.status_code >= 400:
                    text = (await resp.aread()).decode("utf-8", "replace")
                    await resp.aclose()
                    self._check_status(resp, text, n)
                opened.append(resp)

            await self._with_retries(attempt)
            resp = opened[-1]
            try:
                async for line in resp.aiter_lines():
                    chunk = self._sse_data(line)
                    if chunk is None:
                        continue
                    if chunk == "[DONE]":
                        break
                    started = True
                    yield chunk
            except httpx.HTTPError as e:
                kind = "timeout" if isinstance(e, httpx.TimeoutException) else "connect"
                raise self._error(kind, f"stream broke {'after' if started else 'before'} the first chunk "
                                        f"({type(e).__name__})") from None
            finally:
                await resp.aclose()

    def _raw_payload(self, body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
        payload = {**self.config.extra_body, **body, "model": self.config.model}
        if stream:
            payload["stream"] = True
        return payload

    async def _send_raw(self, payload: dict[str, Any], stream: bool, attempt: int) -> httpx.Response:
        """One POST; the open response (status < 400, body unread) or a classified failure."""
        req = self.http.build_request("POST", f"{self.config.base_url}/chat/completions", json=payload,
                                      headers=self._headers(), timeout=self._timeout(stream))
        try:
            resp = await self.http.send(req, stream=True)
            if resp.status_code >= 400:
                try:
                    text = (await resp.aread()).decode("utf-8", "replace")
                finally:
                    await resp.aclose()
                self._check_status(resp, text, attempt)
        except httpx.HTTPError as e:
            raise self._classify(e, attempt) from None
        return resp

    async def post_raw(self, body: Mapping[str, Any], *, admit: Admit | None = None,
                       on_failure: Callable[[], None] | None = None) -> tuple[int, bytes]:
        """POST a client's request body to /chat/completions as it is, except that `model`
        becomes this backend's model (and `extra_body` fills in fields the body lacks), and
        read the whole answer: (status < 400, body bytes). `timeout_s` bounds each attempt
        from connect to the last byte; failures get the same retries as `chat`, then raise
        `BackendError`."""
        payload = self._raw_payload(body, stream=False)

        async def attempt(n: int) -> tuple[int, bytes]:
            resp = await self._send_raw(payload, False, n)
            try:
                return resp.status_code, await resp.aread()
            except httpx.HTTPError as e:
                raise self._classify(e, n) from None
            finally:
                await resp.aclose()

        async with self.semaphore:
            return await self._with_retries(attempt, admit, on_failure)

    @contextlib.asynccontextmanager
    async def open_raw(self, body: Mapping[str, Any], *, stream: bool = False, admit: Admit | None = None,
                       on_failure: Callable[[], None] | None = None) -> AsyncIterator[httpx.Response]:
        """Like `post_raw`, but yields the open response, status < 400, unread: iterate
        `aiter_bytes()` (raw SSE pass-through); each read waits at most
        `stream_idle_timeout_s`. `timeout_s` bounds the attempt up to the response headers;
        the caller bounds its wait for the first chunk. The concurrency slot is held until
        the block exits."""
        payload = self._raw_payload(body, stream)
        async with self.semaphore:
            resp = await self._with_retries(lambda n: self._send_raw(payload, stream, n), admit, on_failure)
            try:
                yield resp
            finally:
                await resp.aclose()

    def _sse_data(self, line: str) -> dict[str, Any] | str | None:
        line = line.strip()
        if not line.startswith("data:"):
            return None  # comments (": ping"), event names and blank separators
        data = line[len("data:"):].strip()
        if data == "[DONE]":
            return data
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            raise self._error("bad_response", f"stream chunk is not JSON: {data[:80]!r}") from None
        if isinstance(chunk, dict) and "error" in chunk:
            raise self._error("http", f"error in stream: {str(chunk['error'])[:200]}")
        return chunk

    def _parse(self, resp: httpx.Response, latency: float, attempt: int) -> ChatResult:
        try:
            data = resp.json()
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise self._error("bad_response", f"not a chat completion: {resp.text[:120]!r}",
                              status=resp.status_code, attempts=attempt) from None
        usage = data.get("usage") or {}
        p_tok, c_tok = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        return ChatResult(backend=self.name, model=str(data.get("model") or self.config.model), text=text,
                          prompt_tokens=p_tok, completion_tokens=c_tok,
                          cost=self.config.cost_per_1k_tokens * (p_tok + c_tok) / 1000.0,
                          latency_s=latency, finish_reason=choice.get("finish_reason"), raw=data)


@dataclass
class _Retryable(Exception):
    kind: ErrorKind
    detail: str
    status: int | None = None
    retry_after: float | None = None


class BackendPool:
    """Clients for several backends sharing one connection pool. Use as an async context
    manager: `async with BackendPool(configs) as pool: await pool["name"].chat(...)`."""

    def __init__(self, configs: Iterable[BackendConfig], *, transport: httpx.AsyncBaseTransport | None = None,
                 retry: RetryPolicy | None = None):
        self.configs = list(configs)
        self._transport = transport
        self._retry = retry
        self.http: httpx.AsyncClient | None = None
        self.clients: dict[str, BackendClient] = {}

    async def __aenter__(self) -> "BackendPool":
        self.http = httpx.AsyncClient(transport=self._transport)
        self.clients = {c.name: BackendClient(c, self.http, retry=self._retry) for c in self.configs}
        return self

    async def __aexit__(self, *exc) -> None:
        if self.http is not None:
            await self.http.aclose()

    def __getitem__(self, name: str) -> BackendClient:
        try:
            return self.clients[name]
        except KeyError:
            raise BackendError(name, "config", f"unknown backend; configured: {sorted(self.clients)}") from None

    def __iter__(self):
        return iter(self.clients.values())
