"""RouteLLM-style model names on the proxy: `router-<name>-<share>` for two-model routers, where the
number is the share of strong-model calls."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from rewardroute.data.schemas import RoutingRecord
from rewardroute.serve.app import create_app
from rewardroute.serve.config import parse_serve_config
from rewardroute.router.policy import PolicySpec
from rewardroute.zooter.labels import score_table
from rewardroute.zooter.train import train_zooter
from rewardroute.zooter.zooter_config import ZooterConfig
from support.fake_backends import FakeBackends, url_of

TOPICS = ["prime numbers", "integrals", "poetry", "cooking pasta", "football", "gardening"]
QUERIES = [f"Tell me something about {TOPICS[i % 6]} (question {i})" for i in range(60)]


@pytest.fixture(scope="module")
def two_model_router(tmp_path_factory):
    # the strong model (the better one on average) wins the maths questions, the weak one the rest
    rows = [RoutingRecord(id=str(i), query=q, scores={"strong": 1.0 if i % 6 < 2 else 0.6,
                                                      "weak": 0.0 if i % 6 < 2 else 0.7})
            for i, q in enumerate(QUERIES)]
    zr, _ = train_zooter(score_table(rows), ZooterConfig(head_l2=1e-3, knn_weight=0.0))
    return zr.save(tmp_path_factory.mktemp("zooter2") / "router")


def test_routellm_names_parse_as_a_strong_share() -> None:
    assert PolicySpec.from_routellm_name("router-rewardroute-0.25", "rewardroute") == PolicySpec("threshold", share=0.25)
    assert PolicySpec.from_routellm_name("rewardroute:argmax", "rewardroute") is None
    for bad in ("router-rewardroute-x", "router-rewardroute-1.5"):
        with pytest.raises(ValueError):
            PolicySpec.from_routellm_name(bad, "rewardroute")


def test_the_share_decides_how_often_the_strong_backend_answers(two_model_router) -> None:
    cfg = parse_serve_config({
        "backends": [{"name": "strong", "base_url": url_of("strong"), "model": "s", "max_retries": 0},
                     {"name": "weak", "base_url": url_of("weak"), "model": "w", "max_retries": 0}],
        "router": {"path": str(two_model_router), "cache_size": 0}, "auth": {"api_keys_env": None}})
    fake = FakeBackends()
    picked = {}
    with TestClient(create_app(cfg, transport=fake)) as client:
        for name in ("router-rewardroute-0", "router-rewardroute-1", "router-rewardroute-0.5", "rewardroute"):
            got = [client.post("/v1/chat/completions", json={"model": name, "messages": [
                {"role": "user", "content": q}]}).headers["x-rewardroute-model"] for q in QUERIES[:20]]
            picked[name] = got.count("strong") / len(got)
        bad = client.post("/v1/chat/completions", json={"model": "router-rewardroute-2",
                                                        "messages": [{"role": "user", "content": "hi"}]})
    assert picked["router-rewardroute-0"] == 0.0 and picked["router-rewardroute-1"] == 1.0
    assert 0.0 < picked["router-rewardroute-0.5"] < 1.0
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "model"
