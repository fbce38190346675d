"""Server-sent events from a backend, passed through to the client.

The bytes go through unchanged except that each JSON `data:` payload gets `model` set to the
backend's name, so every chunk says which backend answered, as the non-streaming answer does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse


class SSERewriter:
    """Splits an SSE byte stream into events and sets `model` in each JSON `data:` payload;
    everything else (comments, `[DONE]`, event names) passes through byte for byte."""

    def __init__(self, model: str):
        self.model = model
        self._buf = b""
        self.error: str | None = None  # an `{"error": ...}` payload seen in the stream

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buf = (self._buf + chunk).replace(b"\r\n", b"\n")  # a CRLF may straddle two chunks
        events = []
        while True:
            end = self._buf.find(b"\n\n")
            if end < 0:
                return events
            raw, self._buf = self._buf[:end], self._buf[end + 2:]
            events.append(self._rewrite(raw) + b"\n\n")

    def flush(self) -> bytes:
        rest, self._buf = self._buf, b""
        return self._rewrite(rest) + b"\n\n" if rest.strip() else b""

    def _rewrite(self, event: bytes) -> bytes:
        lines = event.split(b"\n")
        for i, line in enumerate(lines):
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if not payload or payload == b"[DONE]":
                continue
            try:
                obj = json.loads(payload)
            except ValueError:
                continue  # not ours to judge: pass it on as is
            if isinstance(obj, dict):
                if "error" in obj:
                    self.error = str(obj["error"])[:200]
                if "model" in obj:
                    obj["model"] = self.model
                    lines[i] = b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        return b"\n".join(lines)

    @staticmethod
    def has_data(event: bytes) -> bool:
        return any(line.startswith(b"data:") for line in event.split(b"\n"))


class ProxiedStream(StreamingResponse):
    """A StreamingResponse that always releases the backend stream, even when the client goes
    away before the first byte (the body generator's own `finally` never runs then)."""

    def __init__(self, content: AsyncIterator[bytes], cleanup, **kwargs: Any):
        super().__init__(content, **kwargs)
        self._cleanup = cleanup

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._cleanup()


def sse_error_event(message: str, code: str = "backend_error") -> bytes:
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": code}}
    return b"data: " + json.dumps(body).encode() + b"\n\n"
