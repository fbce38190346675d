"""RODOS: a domain router (the shared ExpertRouter) in front of one `single` model per domain."""

from __future__ import annotations

import json

import pytest
import torch

from rewardroute.backbone import BackboneConfig
from rewardroute.errors import CheckpointError, ConfigError
from rewardroute.reward.checkpoint import load_model, save_model
from rewardroute.reward.reward_config import RewardTrainingConfig
from rewardroute.reward.rodos import RodosConfig, RodosRewardModel
from rewardroute.reward.routed import DomainRouterSettings
from rewardroute.reward.single import SingleRewardModel
from rewardroute.router import ExpertRouter

from support.toy_data import toy_pairs

SHORT = BackboneConfig(max_length=32)


def _pairs():
    return toy_pairs(8)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pairs = _pairs()
    cfg = RodosConfig(backbone=SHORT, domains=["chat", "math"], router=DomainRouterSettings(max_length=32, adapter_epochs=0))
    torch.manual_seed(0)
    model = RodosRewardModel.build(cfg)
    result = model.fit(pairs, pairs[:6], RewardTrainingConfig(epochs=1, batch_size=8, lr=1e-4))
    out = tmp_path_factory.mktemp("rodos") / "rm"
    save_model(model, out)
    return model, pairs, result, out


def test_router_is_the_shared_expert_router_and_routes_well(trained):
    model, pairs, result, _ = trained
    assert isinstance(model.router, ExpertRouter) and model.router.experts == ["chat", "math"]
    assert all(isinstance(m, SingleRewardModel) for m in model.experts)
    out = model.score([p.prompt for p in pairs], [p.chosen for p in pairs], return_output=True)
    pred = [model.config.domains[i] for i in out.domain_probs.argmax(-1).tolist()]
    assert sum(a == p.domain for a, p in zip(pred, pairs)) / len(pairs) >= 0.9
    assert [h["part"] for h in result.history] == ["router", "expert-chat", "expert-math"]


def test_each_pair_goes_to_its_domain_model(trained):
    model, pairs, _, _ = trained
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    oracle = model.score(prompts, responses, domains=[p.domain for p in pairs])
    for k, d in enumerate(model.config.domains):  # oracle routing = that domain's model alone
        idx = [i for i, p in enumerate(pairs) if p.domain == d]
        alone = model.experts[k].score([prompts[i] for i in idx], [responses[i] for i in idx])
        torch.testing.assert_close(oracle[idx], alone)
    # forward() on a batch that mixes domains agrees with batched scoring
    with torch.no_grad():
        mixed = model.eval()(prompts, responses, [p.domain for p in pairs]).rewards
    torch.testing.assert_close(mixed, oracle, atol=1e-5, rtol=1e-4)


def test_soft_mode_mixes_rewards_by_router_probability(trained):
    model, pairs, _, _ = trained
    prompts, responses = [p.prompt for p in pairs[:4]], [p.chosen for p in pairs[:4]]
    probs = model.score(prompts, responses, return_output=True).domain_probs
    each = torch.stack([m.score(prompts, responses) for m in model.experts], dim=-1)
    model.config = model.config.model_copy(update={"soft": True})
    try:
        soft = model.score(prompts, responses)
    finally:
        model.config = model.config.model_copy(update={"soft": False})
    torch.testing.assert_close(soft, (each * probs).sum(-1), atol=1e-5, rtol=1e-4)


def test_checkpoint_holds_complete_single_models_and_reloads_identically(trained):
    model, pairs, _, out = trained
    assert (out / "experts" / "chat" / "config.json").exists() and (out / "routing_prompts.jsonl").exists()
    chat = load_model(out / "experts" / "chat", expect_arch="single")
    prompts, responses = [p.prompt for p in pairs], [p.rejected for p in pairs]
    torch.testing.assert_close(chat.score(prompts, responses), model.experts[0].score(prompts, responses))
    again = load_model(out, expect_arch="rodos")
    assert torch.equal(again.score(prompts, responses), model.score(prompts, responses))
    rep = again.param_report()
    assert rep["loaded_for_inference"] == rep["router"] + sum(rep["per_domain_model"].values())


def test_errors_say_why(trained, tmp_path):
    model, pairs, _, out = trained
    with pytest.raises(CheckpointError, match="'rodos' reward model, not 'arliss'"):
        load_model(out, expect_arch="arliss")
    with pytest.raises(ConfigError, match="have no expert"):
        model.score(["x"], ["y"], domains=["cooking"])
    cfg = RodosConfig(backbone=SHORT, domains=["chat", "math", "code"], router=DomainRouterSettings(max_length=32))
    with pytest.raises(ConfigError, match=r"\['code'\] have no training pairs"):
        RodosRewardModel.build(cfg).fit(pairs, [], RewardTrainingConfig(epochs=1))
    # an arliss checkpoint relabelled as rodos
    bad = tmp_path / "bad"
    bad.mkdir()
    meta = json.loads((out / "config.json").read_text())
    meta["arch"] = "arliss"
    (bad / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="invalid 'arliss' config"):
        load_model(bad)
    # a missing domain model
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    shutil.rmtree(broken / "experts" / "math")
    with pytest.raises(CheckpointError, match="domain model for 'math' is missing"):
        load_model(broken)


def test_empty_and_very_long_texts(trained):
    model = trained[0]
    r = model.score(["", "x " * 50_000, "What is 1 plus 1?"], ["", "", "y " * 50_000])
    assert r.shape == (3,) and torch.isfinite(r).all()


def _size(path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_a_checkpoint_is_the_size_of_its_parts(trained):
    """Each expert is saved once (as its own `single` checkpoint), the router's frozen backbone not
    at all: model.safetensors holds the router head only."""
    model, _, _, out = trained
    experts = sum(_size(out / "experts" / d) for d in ("chat", "math"))
    head = sum(p.numel() * p.element_size() for p in model.router.head.parameters())
    assert (out / "model.safetensors").stat().st_size < head + 4096
    assert _size(out) < experts + head + 64 * 1024  # + config.json, kept prompts


def test_soft_mixing_is_a_rodos_choice_only() -> None:
    from rewardroute.backbone import BackboneConfig
    from rewardroute.errors import ConfigError
    from rewardroute.reward.reward_trainer import build_for_training
    from rewardroute.reward.rodos import set_soft_mixing
    from rewardroute.reward.single import SingleConfig, SingleRewardModel

    single = build_for_training(SingleRewardModel, SingleConfig(backbone=BackboneConfig(max_length=16)), seed=0)
    with pytest.raises(ConfigError, match="apply to rodos models; this one is 'single'"):
        set_soft_mixing(single, True)
