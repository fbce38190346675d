"""Adding a domain to rodos and arliss without retraining: real data (small subsets), real CLI."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from rewardroute.backbone import BackboneConfig
from rewardroute.cli import app
from rewardroute.data import read_pairs
from rewardroute.eval.pairwise import evaluate_reward_model
from rewardroute.io import write_jsonl_atomic
from rewardroute.reward.checkpoint import load_model, save_model
from rewardroute.reward.registry import get_arch
from rewardroute.reward.reward_config import RewardTrainingConfig
from rewardroute.data.sampling import cap_per_domain
from rewardroute.reward.routed import DomainRouterSettings

OLD = ["math", "safety"]  # two old domains keep the test small
NEW = "stories"
runner = CliRunner()
pytestmark = pytest.mark.slow  # trains real models (about a minute per module)


def _subset(path, domains, per_domain):
    by = cap_per_domain(read_pairs(path), per_domain, seed=0)
    return [p for d in domains for p in by.get(d, [])]


def _model(arch: str):
    bb = BackboneConfig(max_length=48)
    cfg = {"backbone": bb, "domains": OLD}
    if arch == "rodos":
        cfg["router"] = DomainRouterSettings(max_length=48, adapter_epochs=0)
    else:
        cfg["router"] = DomainRouterSettings(max_length=48, adapter_epochs=2)
    return get_arch(arch).build(get_arch(arch).config_class(**cfg))


@pytest.fixture(scope="module", params=["rodos", "arliss"])
def grown(request, built_data, built_stories, tmp_path_factory):
    arch = request.param
    tmp = tmp_path_factory.mktemp(f"add-{arch}")
    prefs, stories = built_data / "prefs", built_stories / "prefs"
    torch.manual_seed(0)
    model = _model(arch)
    model.fit(_subset(prefs / "train.jsonl", OLD, 16), _subset(prefs / "valid.jsonl", OLD, 6),
              RewardTrainingConfig(epochs=1, batch_size=16, lr=1e-4, seed=0))
    save_model(model, tmp / "rm", extra={"training": {"args": {"epochs": 1, "batch_size": 16, "lr": 1e-4}}})
    new_train, new_valid = tmp / "new_train.jsonl", tmp / "new_valid.jsonl"
    write_jsonl_atomic(new_train, _subset(stories / "train.jsonl", [NEW], 16))
    write_jsonl_atomic(new_valid, _subset(stories / "valid.jsonl", [NEW], 6))
    old_test = _subset(prefs / "test.jsonl", OLD, 50)  # 1 point = 1 pair of 100
    new_test = _subset(stories / "test.jsonl", [NEW], 20)

    state = {k: v.clone() for k, v in model.state_dict().items()}
    scored_before = _score(model, old_test)
    res = runner.invoke(app, ["rm", "add-domain", "--model", str(tmp / "rm"), "--domain", NEW, "--train",
                              str(new_train), "--valid", str(new_valid), "--json"])
    assert res.exit_code == 0, res.output
    after = load_model(tmp / "rm", expect_arch=arch)
    return {"arch": arch, "tmp": tmp, "after": after, "state": state, "scored_before": scored_before,
            "scored_after": _score(after, old_test), "old_test": old_test, "new_test": new_test,
            "cli": json.loads(res.stdout.strip().splitlines()[-1]), "new_train": new_train}


def _score(model, pairs):
    return model.score([p.prompt for p in pairs] * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs],
                       return_output=True)


def _accuracy(scored) -> float:
    n = len(scored.rewards) // 2
    return (scored.rewards[:n] > scored.rewards[n:]).float().mean().item()


def test_the_model_gains_the_domain(grown):
    after = grown["after"]
    assert after.config.domains == [*OLD, NEW] and grown["cli"]["domains"] == [*OLD, NEW]
    assert after.router.experts == [*OLD, NEW]
    res = evaluate_reward_model(after, grown["new_test"])
    assert res["router_accuracy"] >= 0.8  # stories prompts go to the new expert
    assert 0.0 <= res["accuracy"][NEW] <= 1.0


def test_existing_experts_are_bit_identical(grown):
    old, new = grown["state"], grown["after"].state_dict()
    n_old = len(OLD)
    checked = 0
    for k, v in old.items():
        if k.startswith("router.head.out."):  # one row more; the old rows must not move
            assert torch.equal(new[k][:n_old], v), k
        else:
            assert torch.equal(new[k], v), k
        checked += 1
    assert checked == len(old) and len(new) > len(old)


def test_old_domains_lose_at_most_one_point(grown):
    b, a = grown["scored_before"], grown["scored_after"]
    assert _accuracy(a) >= _accuracy(b) - 0.01 - 1e-6  # float32 accuracies: one pair lost is allowed
    # A prompt can only move to the new domain; one that stays goes to the same expert as before
    # and gets the same reward.
    route_b, route_a = b.domain_probs.argmax(-1), a.domain_probs.argmax(-1)
    stays = route_a != len(OLD)
    assert torch.equal(route_a[stays], route_b[stays])
    torch.testing.assert_close(a.rewards[stays], b.rewards[stays], atol=1e-5, rtol=1e-4)
    assert (~stays).float().mean() <= 0.1


def test_bad_domains_get_clear_errors(grown):
    tmp = grown["tmp"]
    args = ["rm", "add-domain", "--model", str(tmp / "rm"), "--train", str(grown["new_train"])]
    res = runner.invoke(app, [*args, "--domain", "poetry"])
    assert res.exit_code == 2 and "'poetry' is absent from the training data" in res.output
    res = runner.invoke(app, [*args, "--domain", NEW])
    assert res.exit_code == 2 and f"'{NEW}' is already in this {grown['arch']} model" in res.output
    res = runner.invoke(app, [*args, "--domain", "poetry", "--device", "tpu"])
    assert res.exit_code == 2 and "unknown device 'tpu'" in res.output, res.output
    res = runner.invoke(app, [*args, "--domain", "poetry", "--precision", "fp8"])
    assert res.exit_code == 2 and "precision" in res.output, res.output


def test_add_domain_refuses_other_architectures(tmp_path, grown):
    if grown["arch"] != "rodos":
        pytest.skip("checked once")
    single = grown["after"].experts[0]  # a complete `single` model
    save_model(single, tmp_path / "single")
    res = runner.invoke(app, ["rm", "add-domain", "--model", str(tmp_path / "single"), "--domain", NEW,
                              "--train", str(grown["new_train"])])
    assert res.exit_code == 2 and "add-domain works on rodos and arliss" in res.output
