"""The serving parts on their own: config, routing text and policies, breaker, sticky store,
micro-batcher, metrics format, SSE rewriting. No models, no network."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from rewardroute.errors import ConfigError
from rewardroute.serve.batcher import BatcherClosed, MicroBatcher, RowError
from rewardroute.serve.breaker import CircuitBreaker
from rewardroute.serve.sse import SSERewriter
from rewardroute.serve.config import check_paths, load_serve_config, parse_serve_config
from rewardroute.serve.metrics import Counter, Histogram, ServeMetrics
from rewardroute.router.policy import PolicySpec, rank
from rewardroute.serve.router_service import routing_text
from rewardroute.serve.sticky import ConversationStore

REPO = Path(__file__).resolve().parents[1]
BACKENDS = [{"name": "a", "base_url": "http://127.0.0.1:1/v1", "model": "m"},
            {"name": "b", "base_url": "http://127.0.0.1:2/v1", "model": "m", "cost_per_1k_tokens": 1.0}]


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# -- config -------------------------------------------------------------------------------------

def test_example_config_is_valid_and_resolves_paths_next_to_the_file():
    cfg = load_serve_config(REPO / "examples" / "serve.yaml")
    assert [b.name for b in cfg.backends] == ["smol-a", "smol-b"]
    assert cfg.router.path == (REPO / "runs" / "zooter").resolve()
    assert cfg.rewards.models[0].path == (REPO / "runs" / "rm").resolve()
    with pytest.raises(ConfigError, match="not found: router.path"):
        check_paths(cfg)


@pytest.mark.parametrize("data, needle", [
    ({"backends": BACKENDS, "router": {"policy": "greedy"}}, "field 'router.policy'"),
    ({"backends": BACKENDS, "limits": {"max_body_bytes": 10}}, "field 'limits.max_body_bytes'"),
    ({"backends": BACKENDS, "bogus": 1}, "field 'bogus'"),
    ({"backends": BACKENDS + BACKENDS[:1]}, "backend names must be unique"),
    ({"backends": BACKENDS, "router": {"experts": {"x": "nope"}}}, "not a backend"),
    ({"backends": BACKENDS, "rewards": {"models": [{"name": "a", "path": "rm"}]}}, "differ from backend names"),
    ({"backends": BACKENDS, "router": {"name": "a"}}, "also a backend name"),
    ({}, "nothing to serve"),
])
def test_config_errors_name_the_field(data, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_serve_config(data)


def test_backends_file_is_read_relative_to_the_config(tmp_path):
    (tmp_path / "backends.yaml").write_text(json.dumps({"backends": BACKENDS}))
    (tmp_path / "serve.yaml").write_text("backends_file: backends.yaml\nrouter: {policy: cost_aware, lam: 0.5}\n")
    cfg = load_serve_config(tmp_path / "serve.yaml")
    assert [b.name for b in cfg.backends] == ["a", "b"] and cfg.router.lam == 0.5


def test_api_keys_come_from_file_and_environment_and_are_masked(monkeypatch):
    monkeypatch.setenv("MY_KEYS", "k2, k3,")
    cfg = parse_serve_config({"backends": BACKENDS, "auth": {"api_keys": ["k1"], "api_keys_env": "MY_KEYS"}})
    assert cfg.api_keys() == ["k1", "k2", "k3"]
    assert "k1" not in repr(cfg) and "k1" not in cfg.model_dump_json()


# -- routing text and policies --------------------------------------------------------------------

def test_routing_text_rule():
    sys_msg = {"role": "system", "content": "You are helpful."}
    first = [sys_msg, {"role": "user", "content": "What is 2+2?"}]
    assert routing_text(first) == "What is 2+2?"  # one user turn: its text, no system prompt
    convo = first + [{"role": "assistant", "content": "4."}, {"role": "user", "content": "And times 3?"}]
    text = routing_text(convo, context_messages=2, context_chars=300)
    assert text == "User: What is 2+2?\n\nAssistant: 4.\n\nUser: And times 3?"
    assert routing_text(convo, context_messages=0) == "And times 3?"
    cut = routing_text(convo, context_messages=2, context_chars=5)
    assert cut.endswith("User: And times 3?") and len(cut) == 5 + len("\n\nUser: And times 3?")
    # with a conversation id: the first user turn, whatever came after
    assert routing_text(convo, first_turn=True) == "What is 2+2?"
    parts = [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {}}]}]
    assert routing_text(parts) == "hi"


def test_policy_names():
    default = PolicySpec("argmax", 0.0)
    assert PolicySpec.parse(None, PolicySpec("cost_aware", 0.2)) == PolicySpec("cost_aware", 0.2)
    assert PolicySpec.parse("argmax", default) == PolicySpec("argmax")
    assert PolicySpec.parse("cost_aware", PolicySpec("argmax", 0.3)) == PolicySpec("cost_aware", 0.3)
    assert PolicySpec.parse("cost-aware:1.5", default) == PolicySpec("cost_aware", 1.5)
    for bad in ("greedy", "cost_aware:x", "cost_aware:-1", "cost_aware:nan", "argmax:2"):
        with pytest.raises(ValueError):
            PolicySpec.parse(bad, default)


def test_rank_gives_the_policy_pick_then_the_fallback_order():
    probs = np.array([0.5, 0.3, 0.2])
    costs = np.array([10.0, 1.0, 0.0])
    assert rank(probs, PolicySpec("argmax"), costs) == [0, 1, 2]
    assert rank(probs, PolicySpec("cost_aware", 0.0), costs) == [0, 1, 2]
    # lam=0.5: scores 0.5-0.5, 0.3-0.05, 0.2-0 -> b, c, a
    assert rank(probs, PolicySpec("cost_aware", 0.5), costs) == [1, 2, 0]
    assert rank(probs, PolicySpec("cost_aware", float("inf")), costs) == [2, 1, 0]


# -- circuit breaker ------------------------------------------------------------------------------

def test_breaker_opens_after_threshold_and_lets_one_trial_through():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=3, reset_after_s=10, clock=clock)
    b.record_failure(); b.record_failure()
    assert b.state == "closed" and b.allow()
    b.record_success()  # a success resets the count
    b.record_failure(); b.record_failure()
    assert b.allow()
    b.record_failure()
    assert b.state == "open" and not b.allow() and b.retry_in() == pytest.approx(10)
    clock.t += 10
    assert b.state == "half_open"
    assert b.allow() and not b.allow()  # exactly one trial
    b.record_failure()  # the trial failed: open again for a full period
    clock.t += 9
    assert not b.allow()
    clock.t += 1
    assert b.allow()
    b.record_success()
    assert b.state == "closed" and b.allow() and b.allow()


# -- conversation store ---------------------------------------------------------------------------

def test_conversation_store_is_bounded_and_expires():
    clock = Clock()
    store = ConversationStore(max_entries=2, ttl_s=60, clock=clock)
    store.pin("c1", "a"); store.pin("c2", "b")
    assert store.get("c1") == "a"  # c1 is now the most recent
    store.pin("c3", "a")
    assert store.get("c2") is None and len(store) == 2  # the least recent went
    clock.t += 61
    assert store.get("c1") is None and store.get("c3") is None


# -- micro-batcher --------------------------------------------------------------------------------

def test_batcher_merges_concurrent_calls_into_one_pass_and_keeps_order():
    calls: list[list[int]] = []
    sizes: list[int] = []
    release = threading.Event()

    def fn(items):
        release.wait(5)
        calls.append(list(items))
        return [x * 10 for x in items]

    async def go():
        with ThreadPoolExecutor(1) as ex:
            b = MicroBatcher(fn, ex, max_batch=8, window_s=0.0, on_batch=sizes.append)
            first = asyncio.create_task(b.submit([0]))  # runs alone, blocked on `release`
            await asyncio.sleep(0.05)
            rest = [asyncio.create_task(b.submit([i, i + 100])) for i in range(1, 6)]
            await asyncio.sleep(0.05)
            release.set()
            out = await asyncio.gather(first, *rest)
            await b.close()
            return out

    out = asyncio.run(go())
    assert out[0] == [0] and out[1:] == [[i * 10, (i + 100) * 10] for i in range(1, 6)]
    # the 5 callers queued while the first ran: 4 of them (8 items) fit the next batch
    assert sizes == [1, 8, 2] and calls[1] == [1, 101, 2, 102, 3, 103, 4, 104]


def test_batcher_window_waits_for_company_and_a_bad_item_fails_only_its_caller():
    sizes: list[int] = []

    def fn(items):
        if "bad" in items:
            raise ValueError("model failed")
        return items

    async def go():
        with ThreadPoolExecutor(1) as ex:
            b = MicroBatcher(fn, ex, max_batch=64, window_s=0.05, on_batch=sizes.append)
            got = await asyncio.gather(*(b.submit([f"x{i}"]) for i in range(6)))
            results = await asyncio.gather(b.submit(["ok"]), b.submit(["x", "bad"]), b.submit(["fine"]),
                                           return_exceptions=True)
            await b.close()
            with pytest.raises(BatcherClosed):
                await b.submit(["late"])
            return got, results

    got, results = asyncio.run(go())
    assert got == [[f"x{i}"] for i in range(6)] and sizes[0] == 6
    # The batch of 4 failed; run one by one, only the submission holding "bad" fails, naming it.
    assert results[0] == ["ok"] and results[2] == ["fine"]
    assert isinstance(results[1], RowError) and results[1].index == 1 and isinstance(results[1].cause, ValueError)


# -- metrics --------------------------------------------------------------------------------------

def test_prometheus_text_format():
    c = Counter("x_total", "Things.", ("backend",))
    c.inc(backend='we"ird\n')
    c.inc(2, backend="a")
    h = Histogram("lat_seconds", "Latency.", (), buckets=(0.1, 1.0))
    h.observe(0.05); h.observe(0.5); h.observe(5)
    text = "\n".join(c.render() + h.render())
    assert "# TYPE x_total counter" in text
    assert 'x_total{backend="a"} 2' in text and 'x_total{backend="we\\"ird\\n"} 1' in text
    assert 'lat_seconds_bucket{le="0.1"} 1' in text and 'lat_seconds_bucket{le="1"} 2' in text
    assert 'lat_seconds_bucket{le="+Inf"} 3' in text and "lat_seconds_count 3" in text
    assert "lat_seconds_sum 5.55" in text
    with pytest.raises(ValueError):
        c.inc(model="a")


def test_serve_metrics_render_every_family():
    m = ServeMetrics()
    m.reward_batch.observe(16, model="rm")
    text = m.render()
    for name in ("rewardroute_http_requests_total", "rewardroute_backend_requests_total",
                 "rewardroute_routing_decisions_total", "rewardroute_reward_batch_size",
                 "rewardroute_breaker_state", "rewardroute_backend_latency_seconds"):
        assert f"# TYPE {name} " in text
    assert 'rewardroute_reward_batch_size_bucket{model="rm",le="16"} 1' in text


# -- SSE rewriting --------------------------------------------------------------------------------

def test_sse_rewriter_sets_model_across_chunk_boundaries_and_passes_the_rest():
    rw = SSERewriter("smol-a")
    stream = (b': ping\r\n\r\ndata: {"id":"1","model":"upstream","choices":[]}\n\n'
              b'data: {"id":"2","model":"upstream"}\n\ndata: [DONE]\n\n')
    events = []
    for i in range(0, len(stream), 7):  # arbitrary network chunking
        events += rw.feed(stream[i:i + 7])
    events.append(rw.flush())
    assert events[0] == b": ping\n\n"
    assert json.loads(events[1][6:])["model"] == "smol-a" and json.loads(events[2][6:])["id"] == "2"
    assert events[3] == b"data: [DONE]\n\n" and events[4] == b""
    assert not SSERewriter.has_data(events[0]) and SSERewriter.has_data(events[1])
    rw2 = SSERewriter("x")
    rw2.feed(b'data: {"error": {"message": "overloaded"}}\n\n')
    assert "overloaded" in rw2.error


def test_proxied_stream_releases_the_backend_when_the_client_leaves_early():
    from rewardroute.serve.sse import ProxiedStream

    released = []

    async def body():
        yield b"data: {}\n\n"
        await asyncio.sleep(10)  # the backend would keep streaming
        yield b"data: [DONE]\n\n"

    async def cleanup():
        released.append(True)

    async def receive():
        return {"type": "http.disconnect"}  # the client is already gone

    async def send(message):
        pass

    async def go():
        response = ProxiedStream(body(), cleanup, media_type="text/event-stream")
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "method": "POST", "path": "/",
                 "headers": []}
        await asyncio.wait_for(response(scope, receive, send), 5)

    asyncio.run(go())
    assert released == [True]


# -- log redaction, field names --------------------------------------------------------------------

def test_redact_masks_key_like_query_values_and_credentials_only():
    from rewardroute.serve.logs import redact

    assert redact('"GET /v1/models?api_key=sk-1&limit=2 HTTP/1.1"') == '"GET /v1/models?api_key=***&limit=2 HTTP/1.1"'
    assert redact("/x?a=1&TOKEN=t0k;key=k&monkey=banana") == "/x?a=1&TOKEN=***;key=***&monkey=banana"
    assert redact("Authorization: Bearer sk-abc.def") == "Authorization: Bearer ***"
    assert redact("basic dXNlcjpwYXNz") == "basic ***"
    assert redact("/v1/keys?x=1") == "/v1/keys?x=1"


def test_field_path_keeps_user_keys_that_look_like_union_tags():
    from rewardroute.validation import field_path

    assert field_path(("body", "messages", 0, "content", "str")) == "messages[0].content"
    data = {"scores": {"Claude": "x", "str": "y"}, "prompt": [{"role": "user"}]}
    assert field_path(("scores", "Claude"), data) == "scores.Claude"
    assert field_path(("scores", "str"), data) == "scores.str"
    assert field_path(("prompt", "list[Message]", 0, "content"), data) == "prompt[0].content"
    assert field_path(("prompt", "str"), data) == "prompt"
