"""In-process OpenAI-compatible backends for the serve unit tests: an httpx transport that
answers for several base URLs, each in a mode the test sets (ok, down, timing out, failing,
rejecting, or breaking its stream), and records what each backend received."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

import httpx

from benchlib.stub_backend import completion, models, stream_events

MODES = ("ok", "down", "timeout", "500", "400", "401", "stream_break", "garbage")


def url_of(name: str) -> str:
    return f"http://{name}.test/v1"


@dataclass
class FakeBackends(httpx.AsyncBaseTransport):
    """`modes[name]` decides how backend `name` (at `url_of(name)`) answers."""

    modes: dict[str, str] = field(default_factory=dict)
    received: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))

    def count(self, name: str) -> int:
        return len(self.received[name])

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        name = request.url.host.removesuffix(".test")
        mode = self.modes.get(name, "ok")
        if mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if mode == "timeout":
            raise httpx.ReadTimeout("no answer", request=request)
        if request.method == "GET":
            return httpx.Response(200, json=models(name))
        body = json.loads(request.content)
        self.received[name].append(body)
        if mode == "500":
            return httpx.Response(500, json={"error": {"message": "boom"}})
        if mode == "400":
            return httpx.Response(400, json={"error": {"message": "max_tokens is too large"}})
        if mode == "401":
            return httpx.Response(401, json={"error": {"message": "bad backend key"}})
        if mode == "garbage":
            return httpx.Response(200, content=b"<html>not json</html>")
        if body.get("stream"):
            events = stream_events(name, body)
            if mode == "stream_break":
                return httpx.Response(200, headers={"content-type": "text/event-stream"},
                                      stream=_Broken(events[:2]))
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Chunks(events))
        return httpx.Response(200, json=completion(name, body))


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]):
        self.chunks = chunks

    async def __aiter__(self):
        for c in self.chunks:
            yield c


class _Broken(_Chunks):
    """Sends some chunks, then the connection drops."""

    async def __aiter__(self):
        for c in self.chunks:
            yield c
        raise httpx.ReadError("connection reset")
