"""ARLISS: one frozen backbone, a LoRA router adapter and a LoRA reward adapter + head per domain."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from rewardroute.backbone import BackboneConfig
from rewardroute.errors import CheckpointError, ConfigError
from rewardroute.reward.arliss import ArlissConfig, ArlissRewardModel, adapter_name
from rewardroute.reward.checkpoint import load_model, save_model
from rewardroute.reward.reward_config import RewardTrainingConfig
from rewardroute.reward.routed import DomainRouterSettings
from rewardroute.reward.single import SingleConfig, SingleRewardModel

from support.toy_data import toy_pairs

SHORT = BackboneConfig(max_length=32)


def _pairs():
    return toy_pairs(8)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pairs = _pairs()
    cfg = ArlissConfig(backbone=SHORT, domains=["chat", "math"], adapter_lr=2e-3,
                       router=DomainRouterSettings(max_length=16, adapter_epochs=2))
    torch.manual_seed(0)
    model = ArlissRewardModel.build(cfg)
    base = {n: p.detach().clone() for n, p in model.peft.named_parameters() if "lora_" not in n}
    result = model.fit(pairs, pairs[:6], RewardTrainingConfig(epochs=1, batch_size=8))
    out = tmp_path_factory.mktemp("arliss") / "rm"
    save_model(model, out)
    return model, pairs, result, base, out


def test_backbone_stays_frozen_and_each_adapter_learns(trained):
    model, _, result, base, _ = trained
    for n, p in model.peft.named_parameters():
        if "lora_" not in n:
            assert torch.equal(p, base[n]), n
    assert all(not p.requires_grad for p in model.parameters())
    for name in ("router", adapter_name("chat"), adapter_name("math")):
        b = [p for n, p in model.peft.named_parameters() if f"lora_B.{name}." in n]
        assert b and any(p.abs().sum() > 0 for p in b), f"adapter {name} did not train"
    assert [h["part"] for h in result.history] == ["router", "reward-chat", "reward-math"]


def test_one_backbone_pass_scores_a_mixed_batch_with_per_row_adapters(trained, monkeypatch):
    model, pairs, _, _, _ = trained
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    experts = [p.domain for p in pairs]  # alternating math, chat
    calls = []
    real = model.peft.forward

    def spy(*args, **kwargs):
        calls.append(kwargs.get("adapter_names"))
        return real(*args, **kwargs)

    monkeypatch.setattr(model.peft, "forward", spy)
    with torch.no_grad():
        mixed = model.eval().score_rows(prompts, responses, experts, None)
    assert len(calls) == 1 and calls[0] == [adapter_name(d) for d in experts]
    monkeypatch.undo()
    for d in ("chat", "math"):  # the same rows scored one adapter at a time
        idx = [i for i, e in enumerate(experts) if e == d]
        with torch.no_grad():
            alone = model.score_rows([prompts[i] for i in idx], [responses[i] for i in idx], [d] * len(idx), None)
        torch.testing.assert_close(mixed[idx], alone, atol=1e-5, rtol=1e-4)


def test_router_pass_reads_only_the_prompt(trained, monkeypatch):
    model, pairs, _, _, _ = trained
    seen = []
    real = model.router.encode

    def spy(texts, **kw):
        seen.extend(texts)
        return real(texts, **kw)

    monkeypatch.setattr(model.router, "encode", spy)
    prompts = [p.prompt for p in pairs[:4]]
    model.score(prompts * 2, [p.chosen for p in pairs[:4]] + [p.rejected for p in pairs[:4]])
    assert sorted(seen) == sorted(prompts)  # each distinct prompt once, no response text


def test_one_adapter_passes_run_merged_and_leave_the_base_exactly_as_it_was(trained):
    model, pairs, _, _, _ = trained
    model.eval()
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    params = {n: (p, p.detach().clone()) for n, p in model.peft.named_parameters()}

    def both(fn):  # PEFT's active adapter (taken while gradients are on), then the merged weights
        with torch.enable_grad():
            unmerged = fn().detach()
        with torch.no_grad():
            return unmerged, fn()

    for d in ("chat", "math"):
        unmerged, merged = both(lambda: model.score_rows(prompts, responses, [d] * len(prompts), None))
        torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-4)
    unmerged, merged = both(lambda: model.route_probs(prompts, 4))
    torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-4)
    for n, p in model.peft.named_parameters():  # the same parameter objects, bit for bit, still frozen
        assert p is params[n][0] and torch.equal(p, params[n][1]) and not p.requires_grad, n
    from peft.tuners.lora import LoraLayer
    assert not any(m.disable_adapters or m.merged for m in model.peft.modules() if isinstance(m, LoraLayer))

    # a changed adapter is merged afresh (every path that changes one ends in _settle)
    lora_b = next(p for n, p in model.peft.named_parameters() if f"lora_B.{adapter_name('chat')}." in n)
    saved = lora_b.detach().clone()
    try:
        with torch.no_grad():
            lora_b.add_(0.5)
        model._settle()
        unmerged, merged = both(lambda: model.score_rows(prompts, responses, ["chat"] * len(prompts), None))
        torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-4)
    finally:
        with torch.no_grad():
            lora_b.copy_(saved)
        model._settle()


def test_routing_and_oracle(trained):
    model, pairs, _, _, _ = trained
    out = model.score([p.prompt for p in pairs], [p.chosen for p in pairs], return_output=True)
    pred = [model.config.domains[i] for i in out.domain_probs.argmax(-1).tolist()]
    assert sum(a == p.domain for a, p in zip(pred, pairs)) / len(pairs) >= 0.75
    with pytest.raises(ConfigError, match="have no expert"):
        model.score(["x"], ["y"], domains=["cooking"])


def test_heads_are_saved_with_their_adapters_and_reload_is_identical(trained):
    model, pairs, _, _, out = trained
    for name in ("router", "reward-chat", "reward-math"):
        folder = out / "adapters" / name
        assert {f.name for f in folder.iterdir()} == {"adapter_config.json", "adapter_model.safetensors",
                                                       "head.safetensors"}
        assert json.loads((folder / "adapter_config.json").read_text())["r"] == model.config.lora_r
    from safetensors.torch import load_file
    assert load_file(str(out / "model.safetensors")) == {}  # no backbone weights in the checkpoint
    prompts, responses = [p.prompt for p in pairs] + [""], [p.rejected for p in pairs] + ["y " * 5000]
    again = load_model(out, expect_arch="arliss")
    a = model.score(prompts, responses, return_output=True)
    b = again.score(prompts, responses, return_output=True)
    assert torch.equal(a.rewards, b.rewards) and torch.equal(a.domain_probs, b.domain_probs)


def test_loads_a_fraction_of_rodos_parameters():
    from rewardroute.reward.rodos import RodosConfig, RodosRewardModel

    domains = ["chat", "code", "math", "safety", "summarization"]
    arliss = ArlissRewardModel.build(ArlissConfig(backbone=SHORT, domains=domains)).param_report()
    rodos_router = RodosRewardModel.build(RodosConfig(backbone=SHORT, domains=domains)).param_report()["total"]
    single = SingleRewardModel.build(SingleConfig(backbone=SHORT)).param_report()["total"]
    rodos = rodos_router + len(domains) * single  # what a trained rodos loads: router + one model per domain
    assert arliss["loaded_for_inference"] == arliss["total"]
    assert arliss["loaded_for_inference"] <= 0.2 * rodos
    assert set(arliss["per_adapter"]) == {"router", *(adapter_name(d) for d in domains)}
    assert arliss["backbone"] + sum(arliss["per_adapter"].values()) == arliss["total"]


def test_errors_say_why(trained, tmp_path):
    model, pairs, _, _, out = trained
    with pytest.raises(CheckpointError, match="'arliss' reward model, not 'single'"):
        load_model(out, expect_arch="single")
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    shutil.rmtree(broken / "adapters" / "reward-math")
    with pytest.raises(CheckpointError, match="adapter 'reward-math' and its head are missing"):
        load_model(broken)
    # an adapter saved with another rank does not fit
    wrong = tmp_path / "wrong"
    shutil.copytree(out, wrong)
    meta = json.loads((wrong / "config.json").read_text())
    meta["config"]["lora_r"] = 4
    (wrong / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="a different LoRA rank"):
        load_model(wrong)
    with pytest.raises(ConfigError, match="no training pairs"):
        ArlissRewardModel.build(ArlissConfig(backbone=SHORT, domains=["chat", "code"])).fit(
            pairs, [], RewardTrainingConfig(epochs=1))
    model.train()
    try:
        with pytest.raises(ConfigError, match="eval mode"):
            model.score_rows(["x"], ["y"], ["chat"], None)
    finally:
        model.eval()


def test_empty_and_very_long_texts(trained):
    model = trained[0]
    r = model.score(["", "x " * 50_000, "What is 1 plus 1?"], ["", "", "y " * 50_000])
    assert r.shape == (3,) and torch.isfinite(r).all()
