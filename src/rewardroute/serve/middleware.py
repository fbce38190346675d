"""Pure ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware): request
ids and the last-resort 500, request metrics, and the body guard (size limit, unusable values)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Collection

from ..validation import first_bad_value
from .errors import error_body
from .metrics import ServeMetrics

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
HEADER_REQUEST_ID = "x-request-id"
log = logging.getLogger("rewardroute.serve")


def _json_response(status: int, body: dict, headers: list[tuple[bytes, bytes]] | None = None):
    raw = json.dumps(body).encode()
    return ({"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
                         *(headers or [])]},
            {"type": "http.response.body", "body": raw})


class RequestContextMiddleware:
    """Gives every request an id (header `x-request-id` on every answer) and turns an
    unhandled exception into an OpenAI-style 500 quoting that id, with the traceback in the
    server log. The exception stops here: re-raised, it would make uvicorn drop the client's
    keep-alive connection."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = os.urandom(8).hex()
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []),
                                                  (HEADER_REQUEST_ID.encode(), rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # The path only: a query string may carry a key.
            log.exception("unhandled error in %s %s (request id %s)", scope.get("method"), scope.get("path"), rid)
            if started:
                return  # part of the answer is out; uvicorn closes the connection
            for message in _json_response(500, error_body(f"internal server error (request id {rid})",
                                                          type="server_error", code="internal_error")):
                await send_with_id(message)


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


class BodyGuardMiddleware:
    """Reads a request body (small by construction) before the app sees it, and replays it:
    * over `max_bytes` (by Content-Length, or counted while reading a chunked body): 413. The
      rest of the body is read and dropped first (up to `drain_bytes`), so the client is
      reading when the answer comes, not still sending into a closed socket;
    * a bad Content-Length: 400 (uvicorn's parser usually answers that before the app runs);
    * JSON holding a value no handler can use (NaN or Infinity anywhere, also in fields passed
      through to a backend; text with a lone surrogate): 400 naming the field, before the body
      can reach a model or a backend."""

    def __init__(self, app, max_bytes: int, drain_bytes: int | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes if drain_bytes is not None else max(8 * max_bytes, 8 << 20)

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
                if message.get("more_body", False) and not await self._drain(receive):
                    return
                return await self._reject(send, 413, self._message(), "request_too_large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        bad = _unusable(body)
        if bad is not None:
            path, reason = bad
            return await self._reject(send, 400, f"{path or 'request body'}: {reason}", "invalid_value",
                                      param=path or None, close=False)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls wait for the client's disconnect

        await self.app(scope, replay, send)

    async def _drain(self, receive) -> bool:
        """Read and drop the rest of a body; False when the client left or sent too much."""
        drained = 0
        while drained <= self.drain_bytes:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
        return True  # answer anyway; uvicorn closes the connection after it

    def _message(self) -> str:
        return f"the request body is larger than the limit of {self.max_bytes} bytes"

    @staticmethod
    async def _reject(send, status: int, message: str, code: str, *, param: str | None = None,
                      close: bool = True) -> None:
        body = error_body(message, type="invalid_request_error", param=param, code=code)
        for m in _json_response(status, body, [(b"connection", b"close")] if close else None):
            await send(m)


def _unusable(body: bytes) -> tuple[str, str] | None:
    """(field, reason) of the first unusable value in a JSON body; None for a usable one or
    for a body that is not JSON at all (the app answers that with its own 400)."""
    if not body:
        return None
    try:
        obj = json.loads(body)  # NaN and Infinity parse to floats: the walk finds them
    except (ValueError, RecursionError):
        return None
    return first_bad_value(obj)
