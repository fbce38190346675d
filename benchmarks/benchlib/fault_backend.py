"""An OpenAI-compatible backend that fails on demand, on a real socket: for the fault tests
and `benchmarks/serve_faults.py`. Raw asyncio HTTP/1.1 (keep-alive, Content-Length bodies),
so it can do what a framework would not let it: hang, trickle, or drop the connection.

Modes (`backend.mode`, changeable while it runs):
  ok       answers at once (JSON, or SSE when the request has `stream: true`)
  500      HTTP 500 with a JSON error
  garbage  HTTP 200 with a body that is not JSON
  close    reads the request and closes the connection without a word
  hang     reads the request and never answers
  trickle  a valid answer, one byte every `trickle_s` seconds (a stream: one byte of it too)
  flap     `ok` and `close` in turns of `flap_s` seconds
  stall    a stream's first event, then nothing (a non-streaming request: like hang)

    with FaultBackend("slow", mode="trickle") as b:   # a thread with its own event loop
        ... b.url ...                                  # http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from benchlib.stub_backend import completion, models, stream_events

MODES = ("ok", "500", "garbage", "close", "hang", "trickle", "flap", "stall")


class FaultBackend:
    def __init__(self, name: str, mode: str = "ok", *, host: str = "127.0.0.1", port: int = 0,
                 trickle_s: float = 1.0, flap_s: float = 1.0):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
        self.name, self.mode, self.host, self.port = name, mode, host, port
        self.trickle_s, self.flap_s = trickle_s, flap_s
        self.requests = 0  # chat requests received
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self._conns: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- running in a thread -----------------------------------------------------------------
    def __enter__(self) -> "FaultBackend":
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name=f"fault-backend-{self.name}")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fault backend did not start")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    # -- running on the caller's loop --------------------------------------------------------
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            tasks = list(self._conns)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _mode_now(self) -> str:
        if self.mode != "flap":
            return self.mode
        return "ok" if int((time.monotonic() - self._t0) / self.flap_s) % 2 == 0 else "close"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._conns.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                method, path, body = request
                if method == "GET":
                    await _write(writer, 200, json.dumps(models(self.name)).encode())
                    continue
                self.requests += 1
                if not await self._answer(writer, body):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # the client left, or the backend stops
        finally:
            self._conns.discard(task)
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, body: bytes) -> bool:
        """Answer one chat request; False when the connection is to be dropped."""
        mode = self._mode_now()
        if mode == "close":
            return False
        if mode == "hang":
            await asyncio.sleep(3600)
            return False
        if mode == "500":
            await _write(writer, 500, b'{"error": {"message": "boom", "type": "server_error"}}')
            return True
        if mode == "garbage":
            await _write(writer, 200, b"<html>this is not JSON</html>")
            return True
        try:
            req: dict[str, Any] = json.loads(body)
        except ValueError:
            await _write(writer, 400, b'{"error": {"message": "bad json", "type": "invalid_request_error"}}')
            return True
        if req.get("stream"):
            payload = b"".join(stream_events(self.name, req))
            ctype = b"text/event-stream"
        else:
            payload = json.dumps(completion(self.name, req)).encode()
            ctype = b"application/json"
        if mode == "stall":
            first = stream_events(self.name, req)[0] if req.get("stream") else b""
            writer.write(b"HTTP/1.1 200 X\r\ncontent-type: " + ctype + b"\r\ntransfer-encoding: chunked\r\n\r\n")
            if first:
                writer.write(b"%x\r\n%s\r\n" % (len(first), first))
            await writer.drain()
            await asyncio.sleep(3600)
            return False
        if mode == "trickle":
            writer.write(_head(200, len(payload), ctype))
            for i in range(len(payload)):
                writer.write(payload[i:i + 1])
                await writer.drain()
                await asyncio.sleep(self.trickle_s)
            return True
        await _write(writer, 200, payload, ctype)
        return True


def _head(status: int, length: int, ctype: bytes = b"application/json") -> bytes:
    return (f"HTTP/1.1 {status} X\r\ncontent-length: {length}\r\n".encode() + b"content-type: " + ctype +
            b"\r\n\r\n")


async def _write(writer: asyncio.StreamWriter, status: int, body: bytes, ctype: bytes = b"application/json") -> None:
    writer.write(_head(status, len(body), ctype) + body)
    await writer.drain()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path = lines[0].split(" ")[:2]
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    body = await reader.readexactly(length) if length else b""
    return method, path, body
