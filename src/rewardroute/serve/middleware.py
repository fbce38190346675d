"""Pure ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware):
request metrics, and the request body size limit."""

from __future__ import annotations

import json
import time
from collections.abc import Collection

from .errors import error_body
from .metrics import ServeMetrics

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class MetricsMiddleware:
    """Counts requests by endpoint and status and times them to the answer's last byte.
    Paths that are not endpoints count as "other", so scanners cannot blow up label sets."""

    def __init__(self, app, metrics: ServeMetrics, endpoints: Collection[str]):
        self.app = app
        self.metrics = metrics
        self.endpoints = frozenset(endpoints)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = scope.get("path", "")
            endpoint = path if path in self.endpoints else "other"
            self.metrics.http_requests.inc(endpoint=endpoint, status=str(status[0]))
            self.metrics.http_latency.observe(time.perf_counter() - t0, endpoint=endpoint)


class BodyLimitMiddleware:
    """Answers 413 to a body over `max_bytes`, by Content-Length or by counting a chunked body.
    The body is read here (it is small by construction) and replayed to the app."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                return await self._reject(send, 400, "invalid Content-Length header", "invalid_header")
            if too_big:
                return await self._reject(send, 413, self._message(), "request_too_large")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._reject(send, 413, self._message(), "request_too_large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls wait for the client's disconnect

        await self.app(scope, replay, send)

    def _message(self) -> str:
        return f"the request body is larger than the limit of {self.max_bytes} bytes"

    @staticmethod
    async def _reject(send, status: int, message: str, code: str) -> None:
        body = json.dumps(error_body(message, type="invalid_request_error", code=code)).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
