"""The one router face: a domain router and a Zooter router load through one registry and answer
the same calls the same way."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rewardroute.data.schemas import RoutingRecord
from rewardroute.errors import CheckpointError, ConfigError
from rewardroute.router.interface import ROUTER_KINDS, load_any_router, router_kind
from rewardroute.zooter.labels import score_table
from rewardroute.zooter.train import train_zooter
from rewardroute.zooter.zooter_config import ZooterConfig

QUERIES = ["What is 12 times 7?", "Solve 3x = 12.", "Write a haiku about snow.", "Draft a birthday poem."] * 6


@pytest.fixture(scope="module")
def routers(tmp_path_factory):
    from support.serve_models import serve_models

    rows = [RoutingRecord(id=str(i), query=q, scores={"calc": 1.0 if i % 4 < 2 else 0.2, "poet": 0.6})
            for i, q in enumerate(QUERIES)]
    zr, _ = train_zooter(score_table(rows), ZooterConfig(head_l2=1e-3, knn_weight=0.0, method="zooter"))
    zooter_dir = zr.save(tmp_path_factory.mktemp("face") / "zooter")
    return {"domain": serve_models(tmp_path_factory).router_dir, "zooter": zooter_dir}


@pytest.mark.parametrize("kind", ["domain", "zooter"])
def test_every_kind_answers_the_same_calls(routers, kind) -> None:
    path = routers[kind]
    assert router_kind(path) == kind and kind in ROUTER_KINDS
    router = load_any_router(path)
    queries = ["What is 40 plus 2?", [{"role": "user", "content": "Write a poem about rain."}]]
    emb = router.embed(queries)
    probs = router.probs(queries)
    assert isinstance(emb, np.ndarray) and emb.shape == (2, 384)
    assert probs.shape == (2, len(router.experts)) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(router.probs_from_embeddings(emb), probs, atol=1e-6)


def test_only_two_model_zooter_routers_take_a_strong_share(routers) -> None:
    strong, t = load_any_router(routers["zooter"]).strong_threshold(0.5)
    assert strong == "calc" and 0.0 < t < 1.0
    with pytest.raises(ConfigError):
        load_any_router(routers["domain"]).strong_threshold(0.5)


def test_an_unknown_kind_is_named(routers, tmp_path) -> None:
    import shutil

    shutil.copytree(routers["domain"], tmp_path / "r")
    meta = json.loads((tmp_path / "r" / "config.json").read_text())
    meta["config"]["meta"] = {"kind": "mystery"}
    (tmp_path / "r" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="mystery"):
        load_any_router(tmp_path / "r")
