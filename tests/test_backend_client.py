"""The async OpenAI-compatible client: retries, concurrency, errors, streaming (mock transport)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from rewardroute.backends.client import BackendClient, BackendError, BackendPool, RetryPolicy
from rewardroute.backends.config import BackendConfig

NO_WAIT = RetryPolicy(base_s=0.0, cap_s=0.0)


def completion(text: str, prompt_tokens: int = 10, completion_tokens: int = 5) -> dict:
    return {"id": "x", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                                  "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}}


def backend(**kw) -> BackendConfig:
    base = {"name": "b1", "base_url": "http://127.0.0.1:9/v1", "model": "m", "max_retries": 2}
    return BackendConfig(**{**base, **kw})


def run_chat(cfg: BackendConfig, handler, **params):
    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await BackendClient(cfg, http, retry=NO_WAIT).chat([{"role": "user", "content": "hi"}], **params)
    return asyncio.run(go())


def test_chat_parses_text_usage_and_cost():
    seen = {}

    def handler(req: httpx.Request) -> httpx.Response:
        seen["url"] = str(req.url)
        seen["body"] = json.loads(req.content)
        return httpx.Response(200, json=completion("hello", 600, 400))

    res = run_chat(backend(cost_per_1k_tokens=0.002, extra_body={"top_p": 0.5}), handler, max_tokens=8,
                   temperature=None)
    assert res.text == "hello" and res.backend == "b1"
    assert res.cost == pytest.approx(0.002)  # 1000 tokens at 0.002 per 1k
    assert seen["url"] == "http://127.0.0.1:9/v1/chat/completions"
    assert seen["body"]["model"] == "m" and seen["body"]["max_tokens"] == 8 and seen["body"]["top_p"] == 0.5
    assert "temperature" not in seen["body"]  # None means: the backend's default


def test_retries_429_and_5xx_then_succeeds():
    calls = []

    def handler(req):
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, headers={"retry-after": "0"}, text="slow down")
        if len(calls) == 2:
            return httpx.Response(503, text="overloaded")
        return httpx.Response(200, json=completion("ok"))

    assert run_chat(backend(max_retries=2), handler).text == "ok"
    assert len(calls) == 3


def test_gives_up_after_max_retries_with_a_typed_error():
    calls = []

    def handler(req):
        calls.append(1)
        raise httpx.ConnectError("refused", request=req)

    with pytest.raises(BackendError) as e:
        run_chat(backend(max_retries=1), handler)
    assert len(calls) == 2
    assert e.value.backend == "b1" and e.value.kind == "connect" and e.value.attempts == 2
    assert "b1" in str(e.value)


def test_timeouts_are_retried_and_reported():
    def handler(req):
        raise httpx.ReadTimeout("slow", request=req)

    with pytest.raises(BackendError) as e:
        run_chat(backend(max_retries=0, timeout_s=0.5), handler)
    assert e.value.kind == "timeout" and e.value.attempts == 1


def test_other_4xx_is_not_retried():
    calls = []

    def handler(req):
        calls.append(1)
        return httpx.Response(400, json={"error": "context too long"})

    with pytest.raises(BackendError) as e:
        run_chat(backend(max_retries=3), handler)
    assert len(calls) == 1 and e.value.status == 400 and "context too long" in str(e.value)


def test_api_key_is_sent_but_never_in_errors(monkeypatch):
    monkeypatch.setenv("TEST_BACKEND_KEY", "sk-secret-123")
    seen = {}

    def handler(req):
        seen["auth"] = req.headers.get("authorization")
        return httpx.Response(401, text="bad key sk-secret-123")  # a server echoing the key

    with pytest.raises(BackendError) as e:
        run_chat(backend(api_key_env="TEST_BACKEND_KEY"), handler)
    assert seen["auth"] == "Bearer sk-secret-123"
    assert "sk-secret-123" not in str(e.value) and "***" in str(e.value)


def test_malformed_answer_is_a_bad_response():
    with pytest.raises(BackendError) as e:
        run_chat(backend(), lambda req: httpx.Response(200, json={"nope": 1}))
    assert e.value.kind == "bad_response"


def test_concurrency_is_limited_per_backend():
    state = {"now": 0, "max": 0}

    async def handler(req):
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        await asyncio.sleep(0.01)
        state["now"] -= 1
        return httpx.Response(200, json=completion("ok"))

    async def go():
        async with BackendPool([backend(max_concurrency=2)], transport=httpx.MockTransport(handler)) as pool:
            return await asyncio.gather(*(pool["b1"].chat([{"role": "user", "content": str(i)}]) for i in range(8)))

    assert len(asyncio.run(go())) == 8
    assert state["max"] == 2


def test_unknown_backend_name_is_a_clear_error():
    async def go():
        async with BackendPool([backend()]) as pool:
            pool["nope"]

    with pytest.raises(BackendError, match="unknown backend"):
        asyncio.run(go())


def test_stream_yields_parsed_chunks_until_done():
    sse = "".join(f"data: {json.dumps({'choices': [{'delta': {'content': t}}]})}\n\n" for t in ["Hel", "lo"])
    sse = ": keep-alive\n\n" + sse + "data: [DONE]\n\n"
    calls = []

    def handler(req):
        calls.append(json.loads(req.content))
        if len(calls) == 1:
            return httpx.Response(502, text="bad gateway")  # retried: nothing was streamed yet
        return httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"})

    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            client = BackendClient(backend(), http, retry=NO_WAIT)
            return [c async for c in client.stream([{"role": "user", "content": "hi"}])]

    chunks = asyncio.run(go())
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == "Hello"
    assert calls[-1]["stream"] is True and len(calls) == 2


# -- whole-attempt timeouts and the caller's gate (issue #10) -------------------------------------

def test_timeout_bounds_the_whole_answer_not_each_read():
    """A backend that trickles its answer a byte at a time never lets a single read time out;
    `timeout_s` still ends the attempt (before: one byte per 0.5 s kept it going for minutes)."""
    import time

    from benchlib.fault_backend import FaultBackend

    with FaultBackend("slow", "trickle", trickle_s=0.5) as slow:
        cfg = backend(base_url=slow.url, timeout_s=1.0, max_retries=1)
        t0 = time.monotonic()
        with pytest.raises(BackendError) as info:
            asyncio.run(asyncio.wait_for(_chat_real(cfg), 30))
        elapsed = time.monotonic() - t0
    assert info.value.kind == "timeout" and info.value.attempts == 2
    assert 1.9 < elapsed < 4.0


async def _chat_real(cfg: BackendConfig):
    async with httpx.AsyncClient() as http:
        return await BackendClient(cfg, http, retry=NO_WAIT).chat([{"role": "user", "content": "hi"}])


def test_the_gate_is_asked_before_each_attempt_and_hears_each_failure():
    calls, failures, open_after = {"n": 0}, [], 2

    def handler(request):
        calls["n"] += 1
        return httpx.Response(503, json={"error": {"message": "busy"}})

    async def go(admit):
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            client = BackendClient(backend(max_retries=5), http, retry=NO_WAIT)
            return await client.post_raw({"messages": []}, admit=admit, on_failure=lambda: failures.append(1))

    # the breaker opens after 2 failed tries: no third one; the error is the last real failure
    with pytest.raises(BackendError) as info:
        asyncio.run(go(lambda: len(failures) < open_after))
    assert calls["n"] == 2 and len(failures) == 2
    assert (info.value.kind, info.value.status, info.value.attempts, info.value.counted) == ("http", 503, 2, True)
    # refused before any try (it opened while this request queued): nothing sent, "unavailable"
    with pytest.raises(BackendError) as info:
        asyncio.run(go(lambda: False))
    assert info.value.kind == "unavailable" and calls["n"] == 2


def test_raw_post_reads_the_whole_answer_and_counts_a_final_failure():
    def handler(request):
        assert json.loads(request.content)["model"] == "m"  # the backend's model replaces the client's
        return httpx.Response(500, json={"error": {"message": "boom"}})

    seen = []

    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await BackendClient(backend(max_retries=1), http, retry=NO_WAIT).post_raw(
                {"model": "rewardroute", "messages": []}, on_failure=lambda: seen.append(1))

    with pytest.raises(BackendError) as info:
        asyncio.run(go())
    assert info.value.status == 500 and info.value.counted and len(seen) == 2
