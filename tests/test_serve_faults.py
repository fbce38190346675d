"""Hostile input and failing backends (issue #10): no request hurts another, timeouts mean
what they say, queued requests leave a dead backend, and no secret reaches the log.

Backends that must misbehave on a real socket (trickle, hang) are `FaultBackend`s; tests of
connection handling and logging run the app under a real uvicorn in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient

from rewardroute.serve.app import create_app
from rewardroute.serve.config import parse_serve_config
from benchlib.fault_backend import FaultBackend
from rewardroute.serve.protocol import SPEC as HTTP_PROTOCOL
from rewardroute.serve.router_service import LoadedRouter
from rewardroute.serve.state import LoadedModels
from rewardroute.validation import clean_text
from support.fake_backends import FakeBackends, url_of
from support.llama_server import HOST, free_port
from support.serve_models import serve_models
from test_serve_app import MATH, POEM, config, error_of, serving

POISON = "POISON-ROW"


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return serve_models(tmp_path_factory)


class _PoisonableRewardModel:
    """The real reward model, except that a batch holding POISON fails (as a tokenizer did
    on a lone surrogate): what a bad row does to a shared forward pass."""

    def __init__(self, inner):
        self.inner, self.config = inner, inner.config

    def score(self, prompts, responses, **kw):
        if any(POISON in r for r in responses):
            raise RuntimeError("tokenizer exploded")
        return self.inner.score(prompts, responses, **kw)


def poisonable(models) -> LoadedModels:
    router = models.loaded.router

    def embed(texts):
        if any(POISON in t for t in texts):
            raise RuntimeError("tokenizer exploded")
        return router.embed(texts)

    return LoadedModels(LoadedRouter(router.experts, embed, router.head),
                        {"rm": _PoisonableRewardModel(models.loaded.reward_models["rm"])})


async def _asgi(app, fn):
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60) as c:
            return await fn(c)


# -- 1. one request never fails another -----------------------------------------------------------

def test_a_poisoned_row_fails_alone_and_every_good_request_succeeds(models):
    """5 rounds of 40 concurrent calls (rewards and chat), one poisoned reward row and one
    poisoned chat per round: every good call answers 200, each poisoned one a 400 naming it."""
    cfg = config(models, rewards={"max_inputs": 8, "batch_window_ms": 20}, router={"cache_size": 0})
    app = create_app(cfg, models=poisonable(models), transport=FakeBackends())

    def reward(i, bad=False):
        items = [{"prompt": f"q{i}", "response": "fine"}, {"prompt": f"q{i}", "response": POISON if bad else "ok"}]
        return "/v1/rewards", {"model": "rm", "input": items}

    def chat(i, bad=False):
        text = f"{POISON} {i}" if bad else f"What is {i} plus {i}?"
        return "/v1/chat/completions", {"model": "rewardroute", "messages": [{"role": "user", "content": text}]}

    async def rounds(c):
        out = []
        for r in range(5):
            calls = [reward(i) for i in range(19)] + [chat(100 * r + i) for i in range(19)]
            calls += [reward(0, bad=True), chat(0, bad=True)]
            answers = await asyncio.gather(*(c.post(path, json=body) for path, body in calls))
            out.append(answers)
        return out

    for answers in asyncio.run(_asgi(app, rounds)):
        good, bad_reward, bad_chat = answers[:38], answers[38], answers[39]
        assert [a.status_code for a in good] == [200] * 38
        assert all(len(a.json()["data"]) == 2 for a in good[:19])
        assert bad_reward.status_code == 400 and error_of(bad_reward)["param"] == "input[1]"
        assert error_of(bad_reward)["code"] == "unscorable_input"
        assert bad_chat.status_code == 400 and error_of(bad_chat)["param"] == "messages"


@pytest.mark.parametrize("path, raw, param", [
    ("/v1/rewards", b'{"model": "rm", "input": [{"prompt": "ok", "response": "r"}, {"prompt": "a\\ud800b", '
                    b'"response": "r"}]}', "input[1].prompt"),
    ("/v1/rewards", b'{"model": "rm", "input": [{"prompt": [{"role": "user", "content": "\\udfff"}], '
                    b'"response": "r"}]}', "input[0].prompt[0].content"),
    ("/v1/chat/completions", b'{"model": "rewardroute", "messages": [{"role": "user", "content": "hi \\ud83d"}]}',
     "messages[0].content"),
    # NaN in a field the proxy passes through untouched used to crash the forwarding
    ("/v1/chat/completions", b'{"model": "rewardroute", "messages": [{"role": "user", "content": "hi"}], '
                             b'"logit_bias": {"1": NaN}}', "logit_bias.1"),
    ("/v1/chat/completions", b'{"model": "rewardroute", "messages": [{"role": "user", "content": "hi"}], '
                             b'"extra": [1, -Infinity]}', "extra[1]"),
    ("/v1/chat/completions", b'{"model": "rewardroute", "messages": [{"role": "user", "content": "hi"}], '
                             b'"extra": 1e999}', "extra"),
])
def test_unusable_values_anywhere_get_400_naming_the_field(models, path, raw, param):
    fake = FakeBackends()
    with serving(models, fake) as client:
        r = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        err = error_of(r)
        assert err["param"] == param and err["code"] == "invalid_value" and param in err["message"]
        assert fake.count("alpha") + fake.count("beta") == 0
        assert chat_ok(client)  # and the server carries on


def chat_ok(client) -> bool:
    return client.post("/v1/chat/completions", json={"model": "rewardroute",
                                                    "messages": [{"role": "user", "content": MATH}]}).status_code == 200


def test_control_characters_are_normalised_before_the_models(models):
    assert clean_text("a\x00b\x1b[0m\tc\r\n\x7f\x85") == "a b [0m\tc\r\n  "
    with serving(models) as client:
        clean = client.post("/v1/rewards", json={"model": "rm", "input": [{"prompt": "2 + 2", "response": "4 ok"}]})
        dirty = client.post("/v1/rewards", json={"model": "rm", "input": [{"prompt": "2\x00+\x012",
                                                                           "response": "4\x1bok"}]})
        r = client.post("/v1/chat/completions", json={"model": "rewardroute",
                                                      "messages": [{"role": "user", "content": "What\x00 is 2+2?"}]})
    assert dirty.status_code == 200 and r.status_code == 200
    assert dirty.json()["data"][0]["reward"] == pytest.approx(clean.json()["data"][0]["reward"], abs=1e-4)


# -- a real server: keep-alive, logs, body limits --------------------------------------------------

@contextlib.contextmanager
def real_server(app) -> Iterator[str]:
    """`app` under uvicorn (h11, its default logging config, access log on) in a thread."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="info", access_log=True,
                                           http=HTTP_PROTOCOL))  # as `rewardroute serve` runs it
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


class Capture(logging.Handler):
    """Records reaching a logger's own handlers (uvicorn's access logger does not propagate)."""

    def __init__(self, *names: str):
        super().__init__(logging.DEBUG)
        self.names, self.lines = names, []

    def emit(self, record):
        self.lines.append(self.format(record))

    def __enter__(self):
        for n in self.names:
            logging.getLogger(n).addHandler(self)
        return self

    def __exit__(self, *exc):
        for n in self.names:
            logging.getLogger(n).removeHandler(self)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _http(sock: socket.socket, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one request on an open keep-alive socket and read its answer (Content-Length)."""
    sock.sendall(request)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-answer")
        body += chunk
    return int(lines[0].split()[1]), headers, body


def test_an_unhandled_error_is_a_500_with_a_request_id_and_the_connection_stays_open(models, monkeypatch):
    import rewardroute.serve.app as app_module

    async def bug(*_a, **_k):
        raise KeyError("a bug of ours")

    monkeypatch.setattr(app_module, "handle_rewards", bug)
    app = create_app(config(models), models=models.loaded, transport=FakeBackends())
    body = b'{"model": "rm", "input": [{"prompt": "p", "response": "r"}]}'
    with real_server(app) as url, Capture("rewardroute.serve") as log:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection((HOST, port), timeout=30) as sock:
            status, headers, raw = _http(sock, b"POST /v1/rewards HTTP/1.1\r\nHost: t\r\nContent-Type: "
                                               b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            assert status == 500 and headers.get("connection", "").lower() != "close"
            err = json.loads(raw)["error"]
            rid = headers["x-request-id"]
            assert err["type"] == "server_error" and err["code"] == "internal_error" and rid in err["message"]
            # the same connection serves the next request
            status, headers2, _ = _http(sock, b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
            assert status == 200 and headers2["x-request-id"] != rid
    record = next(r for r in log.lines if rid in r)
    assert "Traceback" in record and "a bug of ours" in record


def test_no_key_reaches_the_access_log(models, monkeypatch):
    monkeypatch.setenv("FAULT_TEST_KEYS", "sk-client-key-123")
    app = create_app(config(models, auth={"api_keys_env": "FAULT_TEST_KEYS"}), models=models.loaded,
                     transport=FakeBackends())
    # after uvicorn's logging config (it replaces the handlers of its loggers)
    with real_server(app) as url, Capture("uvicorn.access", "uvicorn.error", "rewardroute.serve") as log:
        with httpx.Client(base_url=url) as c:
            c.get("/v1/models?api_key=sk-client-key-123&limit=2")
            c.get("/v1/models?token=tok-secret-456", headers={"Authorization": "Bearer sk-client-key-123"})
            c.get("/v1/models?x=1&key=key-secret-789&access_token=at-secret-000")
            c.get("/v1/models", headers={"Authorization": "Bearer wrong-secret-abc"})
    text = log.text
    for secret in ("sk-client-key-123", "tok-secret-456", "key-secret-789", "at-secret-000", "wrong-secret-abc"):
        assert secret not in text
    assert "/v1/models?api_key=***&limit=2" in text and "x=1&key=***&access_token=***" in text


def test_a_chunked_body_over_the_limit_gets_a_readable_413(models):
    app = create_app(config(models, limits={"max_body_bytes": 4096}), models=models.loaded, transport=FakeBackends())

    def chunked():  # no Content-Length: the limit is found while reading
        for _ in range(64):
            yield b" " * 1024

    with real_server(app) as url, httpx.Client(base_url=url) as c:
        for _ in range(3):
            r = c.post("/v1/rewards", content=chunked(), headers={"content-type": "application/json"})
            assert r.status_code == 413 and error_of(r)["code"] == "request_too_large"
        assert c.get("/health/live").status_code == 200


# -- 3. timeouts bound the whole attempt ------------------------------------------------------------

def backends_at(alpha: str, beta: str, **alpha_settings) -> list[dict]:
    return [{"name": "alpha", "base_url": alpha, "model": "a", "max_retries": 0, **alpha_settings},
            {"name": "beta", "base_url": beta, "model": "b", "max_retries": 0}]


@pytest.mark.parametrize("stream", [False, True])
def test_a_trickling_backend_times_out_per_attempt_and_falls_back(models, stream):
    with FaultBackend("alpha", "trickle", trickle_s=1.0) as slow, FaultBackend("beta") as ok:
        cfg = config(models, backends=backends_at(slow.url, ok.url, timeout_s=2.0))
        app = create_app(cfg, models=models.loaded)

        async def go(c):
            t0 = time.monotonic()
            r = await asyncio.wait_for(c.post("/v1/chat/completions", json={
                "model": "rewardroute", "stream": stream, "messages": [{"role": "user", "content": MATH}]}), 20)
            return r, time.monotonic() - t0

        r, elapsed = asyncio.run(_asgi(app, go))
        assert slow.requests == 1
    assert r.status_code == 200 and r.headers["x-rewardroute-model"] == "beta"
    assert r.headers["x-rewardroute-fallback-from"] == "alpha"
    assert 1.9 < elapsed < 5.0


# -- 4. the breaker is asked again after the queue --------------------------------------------------

def test_queued_requests_leave_a_hanging_backend_when_its_breaker_opens(models):
    timeout = 1.0
    with FaultBackend("alpha", "hang") as dead, FaultBackend("beta") as ok:
        cfg = config(models, backends=[
            {"name": "alpha", "base_url": dead.url, "model": "a", "max_retries": 1, "timeout_s": timeout,
             "max_concurrency": 4},
            {"name": "beta", "base_url": ok.url, "model": "b", "max_retries": 0}],
            resilience={"failure_threshold": 3, "reset_after_s": 60})
        app = create_app(cfg, models=models.loaded)

        async def one(c, i):
            t0 = time.monotonic()
            r = await c.post("/v1/chat/completions", json={"model": "rewardroute",
                                                           "messages": [{"role": "user", "content": MATH}]})
            return r, time.monotonic() - t0

        async def go(c):
            await c.get("/health/live")
            return await asyncio.wait_for(asyncio.gather(*(one(c, i) for i in range(48))), 60)

        answers = asyncio.run(_asgi(app, go))
        attempts = dead.requests
    assert all(r.status_code == 200 and r.headers["x-rewardroute-model"] == "beta" for r, _ in answers)
    p99 = float(np.percentile([t for _, t in answers], 99))
    # The first 4 tries time out together and open the breaker (it counts attempts); at most
    # the 2 that checked it just before retry once more; everyone queued moves on: about 2x timeout.
    assert p99 < 2 * timeout + 0.8, p99  # before: 12 waves of 2 attempts, ~24 s
    assert attempts <= 6


# -- 7. smaller ----------------------------------------------------------------------------------

def test_health_shows_a_recovered_backend_as_closed(models):
    fake = FakeBackends(modes={"alpha": "down"})
    with serving(models, fake) as client:
        for _ in range(2):  # failure_threshold=2
            chat_ok(client)
        assert client.get("/health").json()["backends"]["alpha"]["breaker"] == "open"
        fake.modes["alpha"] = "ok"
        breaker = client.app.state.serve.breakers["alpha"]
        breaker.opened_at -= breaker.reset_after_s  # the open period is over
        assert client.get("/health").json()["backends"]["alpha"]["breaker"] == "closed"
        r = client.post("/v1/chat/completions", json={"model": "rewardroute",
                                                      "messages": [{"role": "user", "content": MATH}]})
        assert r.headers["x-rewardroute-model"] == "alpha"


def test_a_probe_older_than_the_failure_does_not_close_the_breaker(models):
    fake = FakeBackends()
    with serving(models, fake, health={"cache_s": 3600}) as client:
        assert client.get("/health").json()["backends"]["alpha"]["reachable"]  # cached as reachable
        fake.modes["alpha"] = "down"
        for _ in range(2):
            chat_ok(client)
        state = client.app.state.serve
        breaker = state.breakers["alpha"]
        breaker.opened_at -= breaker.reset_after_s  # time passes for both: the probe stays older
        probed_at, result = state.prober._cache["alpha"]
        state.prober._cache["alpha"] = (probed_at - breaker.reset_after_s, result)
        assert client.get("/health").json()["backends"]["alpha"]["breaker"] == "half_open"


def test_docs_need_a_key_when_auth_is_on(models, monkeypatch):
    monkeypatch.setenv("FAULT_TEST_KEYS", "k1")
    with serving(models, auth={"api_keys_env": "FAULT_TEST_KEYS"}) as client:
        for path in ("/docs", "/redoc"):
            assert client.get(path).status_code == 401
            r = client.get(path, headers={"Authorization": "Bearer k1"})
            assert r.status_code == 200 and "openapi.json" in r.text
    with serving(models) as client:
        assert client.get("/docs").status_code == 200


def test_body_parse_errors_carry_a_code(models):
    with serving(models) as client:
        for ctype, raw in (("application/json", b"{oops"), ("application/json", b"\xff\xfe"),
                           ("text/plain", b"hello"), ("application/json", b"")):
            r = client.post("/v1/rewards", content=raw, headers={"content-type": ctype})
            assert r.status_code == 400 and error_of(r)["code"], (ctype, raw, r.text)
        assert all(r.headers.get("x-request-id") for r in [client.get("/health/live")])


@pytest.mark.parametrize("length", [b"abc", b"-5", b"1, 2"])
def test_a_bad_content_length_gets_an_openai_style_json_400(models, length):
    """uvicorn's parser rejects these before any app runs; `rewardroute serve`'s protocol
    class answers in JSON like every other error."""
    app = create_app(config(models), models=models.loaded, transport=FakeBackends())
    with real_server(app) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection((HOST, port), timeout=30) as sock:
            status, headers, raw = _http(sock, b"POST /v1/rewards HTTP/1.1\r\nHost: t\r\nContent-Type: "
                                               b"application/json\r\nContent-Length: " + length + b"\r\n\r\n{}")
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(raw)["error"]["code"] == "invalid_http_request"


def test_a_bad_content_length_that_reaches_the_app_gets_json_too():
    from rewardroute.serve.middleware import BodyGuardMiddleware

    sent = []

    async def app(scope, receive, send):
        raise AssertionError("not reached")

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "POST", "headers": [(b"content-length", b"12abc")]}
    asyncio.run(BodyGuardMiddleware(app, 1024)(scope, receive, send))
    assert sent[0]["status"] == 400 and json.loads(sent[1]["body"])["error"]["code"] == "invalid_header"


def test_a_stream_that_stalls_after_its_first_chunk_ends_after_the_idle_timeout(models):
    with FaultBackend("alpha", "stall") as stalled, FaultBackend("beta") as ok:
        cfg = config(models, backends=backends_at(stalled.url, ok.url, timeout_s=30.0, stream_idle_timeout_s=1.0))
        app = create_app(cfg, models=models.loaded)

        async def go(c):
            t0 = time.monotonic()
            r = await asyncio.wait_for(c.post("/v1/chat/completions", json={
                "model": "rewardroute", "stream": True, "messages": [{"role": "user", "content": MATH}]}), 20)
            return r, time.monotonic() - t0

        r, elapsed = asyncio.run(_asgi(app, go))
    events = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data: {")]
    assert r.status_code == 200 and r.headers["x-rewardroute-model"] == "alpha"  # its first chunk was out
    assert events[0]["model"] == "alpha" and "broke off the stream (ReadTimeout)" in events[-1]["error"]["message"]
    assert 0.9 < elapsed < 5.0
