"""The serve app in-process: a real (tiny, MiniLM) router and reward model, backends faked by
an httpx transport (tests/support/fake_backends.py) so every failure mode is on demand."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from pydantic import ValidationError
from fastapi.testclient import TestClient

from rewardroute.serve.app import create_app
from rewardroute.serve.config import RewardSettings, parse_serve_config
from rewardroute.serve.router_service import load_expert_router
from support.fake_backends import FakeBackends, url_of
from support.serve_models import routed_reward_model, serve_models

MATH = "What is 38 plus 4?"
POEM = "Write a short poem about the rain."


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return serve_models(tmp_path_factory)


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def config(models, **overrides):
    base = {
        "backends": [{"name": "alpha", "base_url": url_of("alpha"), "model": "alpha-upstream", "max_retries": 0,
                      "cost_per_1k_tokens": 1.0},
                     {"name": "beta", "base_url": url_of("beta"), "model": "beta-upstream", "max_retries": 0,
                      "cost_per_1k_tokens": 0.0}],
        "router": {"path": str(models.router_dir)},
        "rewards": {"models": [{"name": "rm", "path": str(models.reward_dir)}], "max_inputs": 8,
                    "batch_window_ms": 30},
        "resilience": {"retry_base_s": 0, "retry_cap_s": 0, "failure_threshold": 2, "reset_after_s": 60},
        "auth": {"api_keys_env": None},
        "health": {"cache_s": 0},
    }
    return parse_serve_config(deep_merge(base, overrides))


@contextlib.contextmanager
def serving(models, fake: FakeBackends | None = None, **overrides) -> Iterator[TestClient]:
    app = create_app(config(models, **overrides), models=models.loaded, transport=fake or FakeBackends())
    with TestClient(app) as client:
        yield client


def chat(client, content=MATH, model="rewardroute", headers=None, **params):
    return client.post("/v1/chat/completions", headers=headers or {},
                       json={"model": model, "messages": [{"role": "user", "content": content}], **params})


def error_of(resp) -> dict:
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


# -- routing and forwarding -----------------------------------------------------------------------

def test_routes_by_query_and_forwards_the_body_unchanged_but_model(models):
    fake = FakeBackends()
    with serving(models, fake) as client:
        r = chat(client, MATH, max_tokens=8, temperature=0.0, logit_bias={"50256": -100}, custom_field=[1, 2])
        assert r.status_code == 200
        assert r.json()["model"] == "alpha" and r.headers["x-rewardroute-model"] == "alpha"
        assert r.headers["x-rewardroute-route"] == "routed" and r.headers["x-rewardroute-policy"] == "argmax"
        probs = json.loads(r.headers["x-rewardroute-probs"])
        assert set(probs) == {"alpha", "beta"} and probs["alpha"] > probs["beta"]
        assert fake.received["alpha"] == [{"model": "alpha-upstream", "messages": [{"role": "user", "content": MATH}],
                                           "max_tokens": 8, "temperature": 0.0, "logit_bias": {"50256": -100},
                                           "custom_field": [1, 2]}]
        r = chat(client, POEM)
        assert r.headers["x-rewardroute-model"] == "beta" and r.json()["choices"][0]["message"]["content"] == \
            "answer from beta"


def test_a_backend_name_bypasses_the_router(models):
    fake = FakeBackends()
    with serving(models, fake) as client:
        r = chat(client, MATH, model="beta")
        assert r.status_code == 200 and r.json()["model"] == "beta"
        assert r.headers["x-rewardroute-route"] == "explicit" and "x-rewardroute-probs" not in r.headers
        assert fake.count("alpha") == 0


def test_policy_from_the_model_name(models):
    with serving(models) as client:
        assert chat(client, MATH, model="rewardroute:argmax").headers["x-rewardroute-model"] == "alpha"
        # alpha costs 1.0, beta 0.0: a large lambda prefers the free backend even for math
        r = chat(client, MATH, model="rewardroute:cost_aware:10")
        assert r.headers["x-rewardroute-model"] == "beta" and r.headers["x-rewardroute-policy"] == "cost_aware:10"
    with serving(models, router={"policy": "cost_aware", "lam": 10}) as client:
        assert chat(client, MATH).headers["x-rewardroute-model"] == "beta"


def test_unknown_model_and_bad_policy_name_the_field(models):
    with serving(models) as client:
        r = chat(client, model="gpt-17")
        assert r.status_code == 404
        assert error_of(r)["param"] == "model" and error_of(r)["code"] == "model_not_found"
        r = chat(client, model="rewardroute:greedy")
        assert r.status_code == 400 and error_of(r)["param"] == "model" and "greedy" in error_of(r)["message"]


def test_streaming_passes_sse_through_with_the_backend_as_model(models):
    with serving(models) as client:
        with client.stream("POST", "/v1/chat/completions",
                           json={"model": "rewardroute", "stream": True,
                                 "messages": [{"role": "user", "content": POEM}]}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["x-rewardroute-model"] == "beta"
            events = [line for line in r.iter_lines() if line.startswith("data:")]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[5:]) for e in events[:-1]]
    assert all(c["model"] == "beta" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "answer from beta"


def test_without_a_router_the_policy_ranks_uniform_probabilities(models):
    with serving(models, router={"path": None}) as client:
        r = chat(client, POEM)
        assert r.headers["x-rewardroute-model"] == "alpha"  # argmax of a tie: the first backend
        assert json.loads(r.headers["x-rewardroute-probs"]) == {"alpha": 0.5, "beta": 0.5}
        assert chat(client, MATH, model="rewardroute:cost_aware").headers["x-rewardroute-model"] == "beta"  # cheapest


def test_router_experts_map_to_backend_names(models):
    with serving(models, router={"experts": {"alpha": "beta", "beta": "alpha"}}) as client:
        assert chat(client, MATH).headers["x-rewardroute-model"] == "beta"


def test_bfloat16_inference_keeps_decisions_and_rewards_close(models):
    with serving(models) as client:
        exact = chat(client, MATH)
        rewards = client.post("/v1/rewards", json={"model": "rm", "input": [{"prompt": MATH, "response": "42"}]})
    with serving(models, router={"precision": "bfloat16"}, rewards={"precision": "bfloat16"}) as client:
        fast = chat(client, MATH)
        fast_rewards = client.post("/v1/rewards", json={"model": "rm", "input": [{"prompt": MATH, "response": "42"}]})
    assert fast.headers["x-rewardroute-model"] == exact.headers["x-rewardroute-model"] == "alpha"
    p, q = json.loads(exact.headers["x-rewardroute-probs"]), json.loads(fast.headers["x-rewardroute-probs"])
    assert q["alpha"] == pytest.approx(p["alpha"], abs=0.02)
    assert fast_rewards.json()["data"][0]["reward"] == pytest.approx(rewards.json()["data"][0]["reward"], abs=0.05)


def test_int8_router_keeps_decisions_close_and_leaves_rewards_alone(models):
    router = load_expert_router(models.router_dir, int8=True)
    exact = load_expert_router(models.router_dir)
    texts = [MATH, "Write a short poem about the sea.", "What is the capital of France?"]
    a, b = exact.embed(texts), router.embed(texts)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert 0.95 < cos.min() and cos.max() < 0.99999, cos  # close, and really quantised
    assert (exact.probs(texts).argmax(1) == router.probs(texts).argmax(1)).all()
    with serving(models, router={"precision": "int8"}) as client:
        assert chat(client, MATH).headers["x-rewardroute-model"] == "alpha"
    with pytest.raises(ValidationError, match="int8"):  # the reward models never take int8
        RewardSettings(precision="int8")


# -- failures -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["down", "timeout", "500", "401", "garbage"])
def test_falls_back_to_the_next_best_backend(models, mode):
    fake = FakeBackends(modes={"alpha": mode})
    with serving(models, fake) as client:
        r = chat(client, MATH)
        assert r.status_code == 200 and r.json()["model"] == "beta"
        assert r.headers["x-rewardroute-route"] == "fallback" and r.headers["x-rewardroute-fallback-from"] == "alpha"
        metrics = client.get("/metrics").text
    assert 'rewardroute_backend_requests_total{backend="alpha",outcome="error"} 1' in metrics
    assert 'rewardroute_routing_decisions_total{backend="beta",reason="fallback",policy="argmax"} 1' in metrics


def test_retries_a_backend_before_falling_back(models):
    fake = FakeBackends(modes={"alpha": "500"})
    backends = [{"name": "alpha", "base_url": url_of("alpha"), "model": "a", "max_retries": 2},
                {"name": "beta", "base_url": url_of("beta"), "model": "b", "max_retries": 0}]
    with serving(models, fake, backends=backends, resilience={"failure_threshold": 3}) as client:
        assert chat(client, MATH).json()["model"] == "beta"
    assert fake.count("alpha") == 3  # one try and two retries
    # The breaker counts attempts: at threshold 2 it opens after the second try, and the
    # request stops retrying a backend known to be down.
    fake = FakeBackends(modes={"alpha": "500"})
    with serving(models, fake, backends=backends) as client:
        assert chat(client, MATH).json()["model"] == "beta"
        assert client.get("/health").json()["backends"]["alpha"]["breaker"] == "open"
    assert fake.count("alpha") == 2


def test_a_request_the_backend_rejects_is_the_clients_error_not_a_fallback(models):
    fake = FakeBackends(modes={"alpha": "400"})
    with serving(models, fake) as client:
        r = chat(client, MATH)
        assert r.status_code == 400 and "max_tokens is too large" in error_of(r)["message"]
        assert fake.count("beta") == 0
        assert chat(client, MATH).status_code == 400  # the breaker did not count it
        assert client.get("/health").json()["backends"]["alpha"]["breaker"] == "closed"


def test_circuit_breaker_skips_a_failing_backend(models):
    fake = FakeBackends(modes={"alpha": "down"})
    with serving(models, fake) as client:
        for _ in range(2):  # failure_threshold=2
            assert chat(client, MATH).json()["model"] == "beta"
        assert client.get("/health").json()["backends"]["alpha"]["breaker"] == "open"
        tried = fake.count("alpha")
        r = chat(client, MATH)
        assert r.json()["model"] == "beta" and fake.count("alpha") == tried
        assert r.headers["x-rewardroute-route"] == "routed"  # beta is the first allowed, nothing failed
        assert 'rewardroute_breaker_state{backend="alpha"} 2' in client.get("/metrics").text


def test_every_backend_failing_is_a_502_and_every_breaker_open_a_503(models):
    fake = FakeBackends(modes={"alpha": "down", "beta": "500"})
    with serving(models, fake) as client:
        r = chat(client, MATH)
        assert r.status_code == 502 and error_of(r)["code"] == "backend_error"
        assert "alpha: connect" in error_of(r)["message"] and "beta: http 500" in error_of(r)["message"]
        chat(client, MATH)
        r = chat(client, MATH)
        assert r.status_code == 503 and error_of(r)["code"] == "backend_unavailable"
        assert int(r.headers["retry-after"]) >= 1


def test_explicit_backend_does_not_fall_back(models):
    fake = FakeBackends(modes={"beta": "timeout"})
    with serving(models, fake) as client:
        r = chat(client, MATH, model="beta")
        assert r.status_code == 504 and error_of(r)["code"] == "backend_timeout"
        assert fake.count("alpha") == 0


def test_stream_falls_back_before_its_first_chunk_and_reports_a_break_after_it(models):
    body = {"model": "rewardroute", "stream": True, "messages": [{"role": "user", "content": MATH}]}
    with serving(models, FakeBackends(modes={"alpha": "down"})) as client:
        r = client.post("/v1/chat/completions", json=body)
        assert r.headers["x-rewardroute-model"] == "beta" and r.text.rstrip().endswith("data: [DONE]")
    with serving(models, FakeBackends(modes={"alpha": "stream_break"})) as client:
        r = client.post("/v1/chat/completions", json=body)
        assert r.status_code == 200 and r.headers["x-rewardroute-model"] == "alpha"
        events = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data: {")]
        assert events[0]["model"] == "alpha" and "broke off" in events[-1]["error"]["message"]


# -- stickiness -----------------------------------------------------------------------------------

def test_a_conversation_id_keeps_the_conversation_on_one_backend(models):
    fake = FakeBackends()
    turn1 = [{"role": "user", "content": MATH}]
    turn2 = turn1 + [{"role": "assistant", "content": "42"}, {"role": "user", "content": POEM}]
    with serving(models, fake) as client:
        def ask(messages, conv=None):
            headers = {"x-conversation-id": conv} if conv else {}
            r = client.post("/v1/chat/completions", headers=headers,
                            json={"model": "rewardroute", "messages": messages})
            return r.headers["x-rewardroute-model"], r.headers["x-rewardroute-route"]

        assert ask(turn1, "c1") == ("alpha", "routed")
        assert ask(turn2, "c1") == ("alpha", "sticky")  # the poem turn stays with the conversation
        assert ask(turn2) == ("beta", "routed")  # without an id the last turn decides
        fake.modes["alpha"] = "down"
        assert ask(turn2, "c1") == ("beta", "fallback")
        fake.modes["alpha"] = "ok"
        assert ask(turn2, "c1") == ("beta", "sticky")  # re-pinned: no bouncing back


# -- rewards --------------------------------------------------------------------------------------

def test_rewards_scores_pairs(models):
    with serving(models) as client:
        r = client.post("/v1/rewards", json={"model": "rm", "input": [
            {"prompt": "What is 2+2?", "response": "4"},
            {"prompt": [{"role": "user", "content": "Hi"}], "response": "Hello!"}]})
        assert r.status_code == 200
        body = r.json()
        assert body["model"] == "rm" and body["usage"] == {"inputs": 2}
        assert [d["index"] for d in body["data"]] == [0, 1]
        assert all(isinstance(d["reward"], float) and d["domain"] is None for d in body["data"])


def test_rewards_match_the_model_scored_directly(models):
    pairs = [("Explain gravity.", "Mass attracts mass."), ("Say hi", "Go away.")]
    want = models.loaded.reward_models["rm"].score([p for p, _ in pairs], [r for _, r in pairs]).tolist()
    with serving(models) as client:
        got = client.post("/v1/rewards", json={"model": "rm", "input": [{"prompt": p, "response": r}
                                                                        for p, r in pairs]}).json()
    assert [d["reward"] for d in got["data"]] == pytest.approx(want, abs=1e-5)


def test_concurrent_reward_calls_share_a_forward_pass(models):
    app = create_app(config(models), models=models.loaded, transport=FakeBackends())

    async def go():
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                calls = [c.post("/v1/rewards", json={"model": "rm", "input": [{"prompt": f"q{i}", "response": "a"}]})
                         for i in range(8)]
                answers = await asyncio.gather(*calls)
                return answers, (await c.get("/metrics")).text

    answers, metrics = asyncio.run(go())
    assert all(a.status_code == 200 and len(a.json()["data"]) == 1 for a in answers)
    count = float(next(l.split()[-1] for l in metrics.splitlines()
                       if l.startswith('rewardroute_reward_batch_size_count{model="rm"}')))
    total = float(next(l.split()[-1] for l in metrics.splitlines()
                       if l.startswith('rewardroute_reward_batch_size_sum{model="rm"}')))
    assert total == 8 and count < 8  # 8 calls in fewer forward passes than calls


def test_routed_reward_models_report_their_domain(models, tmp_path_factory):
    from rewardroute.serve.state import LoadedModels

    path, arliss = routed_reward_model(tmp_path_factory)
    loaded = LoadedModels(models.loaded.router, {**models.loaded.reward_models, "routed": arliss})
    cfg = config(models, rewards={"models": [{"name": "rm", "path": str(models.reward_dir)},
                                             {"name": "routed", "path": str(path)}]})
    with TestClient(create_app(cfg, models=loaded, transport=FakeBackends())) as client:
        data = client.post("/v1/rewards", json={"model": "routed", "input": [
            {"prompt": MATH, "response": "42"}, {"prompt": POEM, "response": "Rain falls."}]}).json()["data"]
        cards = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    want = arliss.score([MATH, POEM], ["42", "Rain falls."], return_output=True)
    for d, reward, probs in zip(data, want.rewards.tolist(), want.domain_probs.tolist()):
        assert set(d["domain_probs"]) == {"math", "chat"} and sum(d["domain_probs"].values()) == pytest.approx(1)
        assert d["domain"] == max(d["domain_probs"], key=d["domain_probs"].get)
        assert d["reward"] == pytest.approx(reward, abs=1e-5)
        assert [d["domain_probs"]["math"], d["domain_probs"]["chat"]] == pytest.approx(probs, abs=1e-5)
    assert cards["routed"]["details"] == {"arch": "arliss", "domains": ["math", "chat"]}


@pytest.mark.parametrize("payload, status, param", [
    ({"model": "nope", "input": [{"prompt": "p", "response": "r"}]}, 404, "model"),
    ({"model": "rm", "input": [{"prompt": "p", "response": "r"}] * 9}, 400, "input"),
    ({"model": "rm", "input": []}, 400, "input"),
    ({"model": "rm", "input": [{"prompt": "p"}]}, 400, "input[0].response"),
    ({"model": "rm", "input": [{"prompt": 3, "response": "r"}]}, 400, "input[0].prompt"),
    ({"input": [{"prompt": "p", "response": "r"}]}, 400, "model"),
])
def test_bad_reward_requests_get_4xx_naming_the_field(models, payload, status, param):
    with serving(models) as client:
        r = client.post("/v1/rewards", json=payload)
        assert r.status_code == status and error_of(r)["param"] == param


# -- bad input, auth, limits ----------------------------------------------------------------------

@pytest.mark.parametrize("payload, param", [
    ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "rewardroute", "messages": []}, "messages"),
    ({"model": "rewardroute", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"model": "rewardroute", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"model": "rewardroute", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
    ({"model": "rewardroute", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
    ({"model": "rewardroute", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
])
def test_malformed_chat_requests_get_400_naming_the_field(models, payload, param):
    with serving(models) as client:
        r = client.post("/v1/chat/completions", json=payload)
        assert r.status_code == 400 and error_of(r)["param"] == param
        assert error_of(r)["type"] == "invalid_request_error"


def test_not_json_and_wrong_paths_get_openai_style_errors(models):
    with serving(models) as client:
        r = client.post("/v1/chat/completions", content=b"{oops", headers={"content-type": "application/json"})
        assert r.status_code == 400 and error_of(r)["code"] == "invalid_json"
        r = client.post("/v1/chat/completions", content=b"[1, 2]", headers={"content-type": "application/json"})
        assert r.status_code == 400 and error_of(r)["code"] == "invalid_body"
        assert client.get("/v1/nothing").status_code == 404 and error_of(client.get("/v1/nothing"))["code"]
        r = client.get("/v1/chat/completions")
        assert r.status_code == 405 and error_of(r)["code"] == "method_not_allowed"


def test_body_size_limit(models):
    with serving(models, limits={"max_body_bytes": 2048}) as client:
        big = {"model": "rewardroute", "messages": [{"role": "user", "content": "x" * 4000}]}
        r = client.post("/v1/chat/completions", json=big)
        assert r.status_code == 413 and error_of(r)["code"] == "request_too_large"

        def chunked():  # no Content-Length: counted while reading
            for _ in range(10):
                yield b" " * 500

        r = client.post("/v1/rewards", content=chunked(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert chat(client, MATH).status_code == 200
        assert 'rewardroute_http_requests_total{endpoint="/v1/chat/completions",status="413"} 1' in \
            client.get("/metrics").text


def test_api_keys(models, monkeypatch, caplog):
    secret = "sk-test-7f3a9c"
    monkeypatch.setenv("SERVE_TEST_KEYS", f"other-key,{secret}")
    caplog.set_level(logging.DEBUG)
    with serving(models, auth={"api_keys_env": "SERVE_TEST_KEYS"}) as client:
        r = chat(client)
        assert r.status_code == 401 and error_of(r)["code"] == "missing_api_key"
        assert r.headers["www-authenticate"] == "Bearer"
        r = chat(client, headers={"Authorization": f"Bearer {secret}x"})
        assert r.status_code == 401 and error_of(r)["code"] == "invalid_api_key" and secret not in r.text
        assert client.post("/v1/rewards", json={}).status_code == 401  # auth comes before validation
        assert client.get("/v1/models").status_code == 401
        assert chat(client, headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        assert client.get("/v1/models", headers={"Authorization": "Bearer other-key"}).status_code == 200
        assert client.get("/health").status_code == 200 and client.get("/metrics").status_code == 200
        assert secret not in client.get("/metrics").text
    assert secret not in caplog.text


# -- models, health, metrics, OpenAPI -------------------------------------------------------------

def test_models_list(models):
    with serving(models) as client:
        ids = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert set(ids) == {"rewardroute", "rewardroute:argmax", "rewardroute:cost_aware", "alpha", "beta", "rm"}
    assert ids["rm"]["kind"] == "reward_model" and ids["alpha"]["details"]["model"] == "alpha-upstream"
    assert ids["rewardroute:cost_aware"]["details"]["policy"] == "cost_aware"


def test_health_reports_backends_and_readiness(models):
    fake = FakeBackends()
    with serving(models, fake) as client:
        h = client.get("/health")
        assert h.status_code == 200 and h.json()["status"] == "ok" and h.json()["router"]["loaded"]
        fake.modes["beta"] = "down"
        h = client.get("/health").json()
        assert h["status"] == "degraded" and h["ready"] and not h["backends"]["beta"]["reachable"]
        fake.modes["alpha"] = "down"
        h = client.get("/health")
        assert h.status_code == 503 and h.json()["status"] == "unavailable" and not h.json()["ready"]
        assert client.get("/health/live").json() == {"status": "ok"}


def test_metrics_cover_requests_routing_and_latency(models):
    with serving(models) as client:
        chat(client, MATH)
        chat(client, MATH)  # the same text: answered from the routing cache
        chat(client, POEM, stream=True)
        text = client.get("/metrics").text
    assert text.endswith("\n")
    assert 'rewardroute_http_requests_total{endpoint="/v1/chat/completions",status="200"} 3' in text
    assert 'rewardroute_backend_requests_total{backend="alpha",outcome="ok"} 2' in text
    assert 'rewardroute_routing_decisions_total{backend="beta",reason="routed",policy="argmax"} 1' in text
    assert 'rewardroute_routing_duration_seconds_count{cache="hit"} 1' in text
    assert 'rewardroute_backend_latency_seconds_count{backend="alpha"} 2' in text
    assert "rewardroute_router_batch_size_count" in text


def test_openapi_is_published_with_400_not_422(models):
    with serving(models) as client:
        spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert {"/v1/chat/completions", "/v1/rewards", "/v1/models", "/health", "/metrics"} <= set(paths)
    responses = paths["/v1/chat/completions"]["post"]["responses"]
    assert "400" in responses and "422" not in responses and "502" in responses


def test_official_openai_client_works_unchanged(models):
    openai = pytest.importorskip("openai")
    with serving(models) as client:
        oa = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=client, max_retries=0)
        out = oa.chat.completions.create(model="rewardroute", messages=[{"role": "user", "content": POEM}],
                                         max_tokens=8)
        assert out.model == "beta" and out.choices[0].message.content == "answer from beta"
        raw = oa.chat.completions.with_raw_response.create(model="rewardroute",
                                                           messages=[{"role": "user", "content": MATH}])
        assert raw.headers["x-rewardroute-model"] == "alpha" and raw.parse().model == "alpha"
        stream = oa.chat.completions.create(model="rewardroute:argmax", stream=True,
                                            messages=[{"role": "user", "content": MATH}])
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "answer from alpha"
        assert {m.id for m in oa.models.list()} >= {"rewardroute", "alpha", "beta", "rm"}
        with pytest.raises(openai.NotFoundError):
            oa.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.BadRequestError) as e:
            oa.chat.completions.create(model="rewardroute", messages=[{"role": "user", "content": "x"}], max_tokens=0)
        assert e.value.body["param"] == "max_tokens"


def test_zooter_router_directories_load_too(models, tmp_path):
    from rewardroute.router import load_router
    from rewardroute.zooter.route import ZooterRouter

    from rewardroute.zooter.zooter_config import ZooterConfig
    from rewardroute.zooter.zooter_state import InferenceSettings, KnnSettings, ZooterState

    router = load_router(models.router_dir)
    state = ZooterState(method="zooter", training=ZooterConfig(), models=["alpha", "beta"], n_train=0,
                        inference=InferenceSettings(knn=KnnSettings(k=5, weight=0.0, temperature=0.05)),
                        train_means={"alpha": 0.5, "beta": 0.5}, best_single="alpha")
    router.config = router.config.model_copy(update={"meta": state.model_dump(mode="json")})
    ZooterRouter(router).save(tmp_path / "zooter")
    loaded = load_expert_router(tmp_path / "zooter")
    p = loaded.probs([MATH, POEM])
    assert loaded.experts == ["alpha", "beta"] and p[0].argmax() == 0 and p[1].argmax() == 1
    assert p == pytest.approx(models.loaded.router.probs([MATH, POEM]), abs=1e-6)


# -- the command line -----------------------------------------------------------------------------

def test_serve_command_fails_early_with_one_line(models, tmp_path):
    from typer.testing import CliRunner

    from rewardroute.cli import app

    runner = CliRunner()
    bad = tmp_path / "bad.yaml"
    bad.write_text("backends: [{name: a, base_url: ftp://x, model: m}]\n")
    res = runner.invoke(app, ["serve", "--config", str(bad)])
    assert res.exit_code == 2 and "backends.0.base_url" in res.output
    unmapped = tmp_path / "unmapped.yaml"
    unmapped.write_text(f"backends: [{{name: x, base_url: 'http://127.0.0.1:1/v1', model: m}}]\n"
                        f"router: {{path: {models.router_dir}}}\n")
    res = runner.invoke(app, ["serve", "--config", str(unmapped)])
    assert res.exit_code == 2 and "router.experts" in res.output
    assert runner.invoke(app, ["serve", "--config", str(tmp_path / "missing.yaml")]).exit_code == 2
