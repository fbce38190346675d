"""End to end: `rewardroute serve` as a real process in front of real llama.cpp servers
(SmolLM2-135M on loopback), used through the official `openai` client.

Backends: `smol-a` and `smol-b` (the session's servers from support.llama_server) and `victim`,
a third server this module kills mid-run. The test router's experts map alpha (arithmetic) ->
victim and beta (writing) -> smol-b; smol-a is reachable by name only. The kill test is last in
the module, because nothing after it could route to the victim.
"""

from __future__ import annotations

import json
import signal
import threading

import httpx
import pytest
import yaml

from support.llama_server import LlamaServerSpec, llama_cpp_available
from support.serve_models import serve_models
from support.serve_process import killable_llama_server, serve_process

pytestmark = pytest.mark.e2e

API_KEY = "sk-e2e-3c1f0b"
MATH = "What is 38 plus 4?"
POEM = "Write a short poem about the rain."


@pytest.fixture(scope="module")
def stack(llama_servers, tmp_path_factory):
    reason = llama_cpp_available()
    if reason is not None:
        pytest.skip(reason)
    models = serve_models(tmp_path_factory)
    root = tmp_path_factory.mktemp("serve-e2e")
    with killable_llama_server(LlamaServerSpec(name="victim", seed=3), root) as victim:
        backend = {"max_retries": 1, "timeout_s": 60, "max_concurrency": 4}
        config = {
            "backends": [{"name": s.name, "base_url": s.base_url, "model": s.name, **backend} for s in llama_servers]
            + [{"name": "victim", "base_url": victim.url, "model": "victim", **backend}],
            "router": {"path": str(models.router_dir), "experts": {"alpha": "victim", "beta": "smol-b"}},
            "rewards": {"models": [{"name": "rm", "path": str(models.reward_dir)}]},
            "resilience": {"failure_threshold": 2, "reset_after_s": 600, "retry_base_s": 0.05, "retry_cap_s": 0.2},
            "auth": {"api_keys_env": "E2E_SERVE_KEYS"},
            "health": {"cache_s": 0},
        }
        path = root / "serve.yaml"
        path.write_text(yaml.safe_dump(config))
        with serve_process(path, env={"E2E_SERVE_KEYS": API_KEY}) as server:
            yield server, victim


@pytest.fixture(scope="module")
def client(stack):
    openai = pytest.importorskip("openai")
    server, _ = stack
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0, timeout=120)


def test_routes_real_requests_through_the_proxy(client):
    math = client.chat.completions.with_raw_response.create(
        model="rewardroute", messages=[{"role": "user", "content": MATH}], max_tokens=8, temperature=0)
    poem = client.chat.completions.with_raw_response.create(
        model="rewardroute", messages=[{"role": "user", "content": POEM}], max_tokens=8, temperature=0)
    assert math.headers["x-rewardroute-model"] == "victim" and poem.headers["x-rewardroute-model"] == "smol-b"
    for raw, name in ((math, "victim"), (poem, "smol-b")):
        out = raw.parse()
        assert out.model == name and out.choices[0].message.content.strip()
        assert 0 < out.usage.completion_tokens <= 8
        assert set(json.loads(raw.headers["x-rewardroute-probs"])) == {"victim", "smol-b"}


def test_streams_real_sse_through_the_proxy(client):
    stream = client.chat.completions.create(model="rewardroute", stream=True, max_tokens=8,
                                            messages=[{"role": "user", "content": POEM}])
    chunks = list(stream)
    assert chunks and all(c.model == "smol-b" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].choices[0].finish_reason in ("length", "stop")


def test_backend_name_bypasses_routing_and_conversations_stay_put(client, stack):
    out = client.chat.completions.create(model="smol-a", messages=[{"role": "user", "content": MATH}], max_tokens=4)
    assert out.model == "smol-a"
    convo = [{"role": "user", "content": POEM}, {"role": "assistant", "content": "Rain taps."},
             {"role": "user", "content": "Now what is 12 times 12?"}]
    raw = client.chat.completions.with_raw_response.create(model="rewardroute", messages=convo, max_tokens=4,
                                                           extra_headers={"x-conversation-id": "e2e-1"})
    assert raw.headers["x-rewardroute-model"] == "smol-b"  # the conversation began with a poem


def test_auth_rewards_health_and_metrics(stack):
    server, _ = stack
    auth = {"Authorization": f"Bearer {API_KEY}"}
    r = httpx.post(f"{server.url}/v1/rewards", json={"model": "rm", "input": [{"prompt": MATH, "response": "42"}]})
    assert r.status_code == 401 and API_KEY not in r.text
    r = httpx.post(f"{server.url}/v1/rewards", headers=auth,
                   json={"model": "rm", "input": [{"prompt": MATH, "response": "42"}, {"prompt": POEM, "response": "x"}]})
    assert r.status_code == 200 and len(r.json()["data"]) == 2
    health = httpx.get(f"{server.url}/health", timeout=10).json()
    assert health["ready"] and all(b["reachable"] for b in health["backends"].values())
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'rewardroute_backend_requests_total{backend="smol-b",outcome="ok"}' in metrics
    assert httpx.get(f"{server.url}/openapi.json").json()["paths"]["/v1/rewards"]


def test_killing_a_backend_mid_run_falls_back_without_losing_requests(client, stack):
    """Two clients send arithmetic (routed to the victim) while the victim is killed: every
    request still gets an answer, from smol-b, and the breaker then skips the victim."""
    server, victim = stack
    results: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    answered = threading.Semaphore(0)

    def worker(n: int) -> None:
        for i in range(n):
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model="rewardroute", max_tokens=6, messages=[{"role": "user", "content": f"What is {i} plus 7?"}])
                results.append((raw.headers["x-rewardroute-model"], raw.headers["x-rewardroute-route"]))
                assert raw.parse().choices[0].message.content is not None
            except BaseException as e:  # collected: asserted on below
                errors.append(e)
            answered.release()

    threads = [threading.Thread(target=worker, args=(6,)) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(2):
        assert answered.acquire(timeout=120)  # the victim has answered some
    victim.proc.send_signal(signal.SIGKILL)
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    assert len(results) == 12  # nothing lost
    assert results[0][0] == "victim"
    after = results[4:]  # both clients are past the kill by then
    assert all(model == "smol-b" for model, _ in after), results
    assert any(route == "fallback" for _, route in results)
    health = httpx.get(f"{server.url}/health", timeout=10).json()
    assert not health["backends"]["victim"]["reachable"] and health["backends"]["victim"]["breaker"] != "closed"
    assert health["ready"] and health["status"] == "degraded"
    # streaming keeps working after the kill too
    chunks = list(client.chat.completions.create(model="rewardroute", stream=True, max_tokens=4,
                                                 messages=[{"role": "user", "content": MATH}]))
    assert chunks and chunks[0].model == "smol-b"


def test_graceful_shutdown_and_no_key_in_logs(stack):
    server, _ = stack
    # uvicorn finishes in-flight work and the app's shutdown, then re-raises the signal
    assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    log = server.log_text()
    assert "Application shutdown complete" in log and "Traceback" not in log
    assert API_KEY not in log
