"""A minimal OpenAI-compatible backend that answers at once: for load tests (it measures the
proxy, not a model), demos and tests. Not a model: it echoes which backend answered.

    python benchmarks/benchlib/stub_backend.py --port 9001 --name fast

Raw ASGI, no framework, so that it costs far less per request than the proxy in front of it.
`POST /v1/chat/completions` (JSON or SSE when `stream` is true) and `GET /v1/models`.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def completion(name: str, body: dict[str, Any]) -> dict[str, Any]:
    text = f"answer from {name}"
    return {"id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", name),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11}}


def stream_events(name: str, body: dict[str, Any]) -> list[bytes]:
    """SSE events of a streamed answer: role, two content pieces, the finish chunk, [DONE]."""
    base = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body.get("model", name)}
    deltas = [{"role": "assistant", "content": ""}, {"content": "answer from "}, {"content": name}]
    chunks = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]


def models(name: str) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "stub"}]}


def make_app(name: str):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if scope["method"] == "GET" and path.endswith("/models"):
            return await _send(send, 200, json.dumps(models(name)).encode())
        if scope["method"] != "POST" or not path.endswith("/chat/completions"):
            return await _send(send, 404, b'{"error": {"message": "not found", "type": "invalid_request_error"}}')
        try:
            req = json.loads(body)
        except ValueError:
            return await _send(send, 400, b'{"error": {"message": "bad json", "type": "invalid_request_error"}}')
        if req.get("stream"):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            for event in stream_events(name, req):
                await send({"type": "http.response.body", "body": event, "more_body": True})
            return await send({"type": "http.response.body", "body": b""})
        return await _send(send, 200, json.dumps(completion(name, req)).encode())

    return app


async def _send(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--name", default="stub")
    a = p.parse_args(argv)
    uvicorn.run(make_app(a.name), host=a.host, port=a.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
