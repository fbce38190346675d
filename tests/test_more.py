"""MoRE: upcycled sparse MoE blocks inside the backbone, top-2 gating, gate supervision."""

from __future__ import annotations

import copy

import pytest
import torch

from rewardroute.backbone import Backbone, BackboneConfig
from rewardroute.errors import CheckpointError, ConfigError
from rewardroute.reward.checkpoint import load_model, save_model
from rewardroute.reward.moe import MoEFeedForward, upcycle
from rewardroute.reward.more import MoREConfig, MoRERewardModel
from rewardroute.reward.reward_config import RewardTrainingConfig

SHORT = BackboneConfig(max_length=32)


@pytest.fixture(scope="module")
def minilm() -> Backbone:
    return Backbone.load(SHORT)


def _batch(backbone: Backbone):
    enc = backbone.pairs.pad(backbone.pairs.encode_pairs(["What is 2 plus 2?", "Hi"], ["4.", "Hello there, friend."]))
    return enc


def test_upcycling_keeps_the_pretrained_function(minilm):
    """k identical experts with renormalised top-k weights compute the original FFN."""
    moe_bb = copy.deepcopy(minilm).eval()
    blocks = upcycle(moe_bb.model, n_layers=2, n_experts=4)
    assert len(blocks) == 2 and all(isinstance(b, MoEFeedForward) for b in blocks)
    enc = _batch(minilm)
    for b in blocks:
        b.token_mask = enc["attention_mask"]
    with torch.no_grad():
        want = minilm.eval()(**enc)
        got = moe_bb(**enc)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    assert blocks[0].stats.seq_gate.shape == (2, 4)
    torch.testing.assert_close(blocks[0].stats.seq_gate.sum(-1), torch.ones(2))


def test_upcycling_works_on_a_llama_style_decoder():
    from transformers import LlamaConfig, LlamaModel

    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2)
    torch.manual_seed(0)
    model = LlamaModel(cfg).eval()
    ids = torch.randint(0, 64, (2, 7))
    with torch.no_grad():
        want = model(input_ids=ids).last_hidden_state
        blocks = upcycle(model, n_layers=1, n_experts=3)
        got = model(input_ids=ids).last_hidden_state
    assert isinstance(model.layers[-1].mlp, MoEFeedForward) and not isinstance(model.layers[0].mlp, MoEFeedForward)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    assert blocks[0].expert_parameters() == 3 * 32 * 64


def test_bad_settings_say_why(minilm):
    with pytest.raises(ConfigError, match="moe_layers"):
        upcycle(copy.deepcopy(minilm).model, n_layers=7, n_experts=2)
    with pytest.raises(ConfigError, match="one expert per domain"):
        MoRERewardModel(MoREConfig(backbone=SHORT, domains=["a", "b"], n_experts=3), copy.deepcopy(minilm))
    with pytest.raises(ConfigError, match="at least 2 experts"):
        MoRERewardModel(MoREConfig(backbone=SHORT, domains=["a"]), copy.deepcopy(minilm))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, minilm):
    from rewardroute.data.schemas import PreferencePair

    pairs = []
    for i in range(8):
        pairs.append(PreferencePair(id=f"m{i}", prompt=f"What is {i} plus {i}?", chosen=f"{i} plus {i} is {2 * i}.",
                                    rejected="No idea.", domain="math"))
        pairs.append(PreferencePair(id=f"c{i}", prompt=f"Say something kind about topic {i}.",
                                    chosen=f"Topic {i} is wonderful.", rejected="Go away.", domain="chat"))
    cfg = MoREConfig(backbone=SHORT, domains=["chat", "math"])
    torch.manual_seed(0)
    model = MoRERewardModel(cfg, copy.deepcopy(minilm))
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("gate.weight")}
    result = model.fit(pairs, pairs[:4], RewardTrainingConfig(epochs=1, batch_size=8, lr=5e-5, head_lr=1e-2))
    out = tmp_path_factory.mktemp("more") / "rm"
    save_model(model, out)
    return model, pairs, result, before, out


def test_training_adds_balance_and_gate_losses(trained):
    model, pairs, result, before, _ = trained
    assert "train_aux_loss" in result.history[0]
    # the gates learn (at the head's rate)
    after = {n: p for n, p in model.named_parameters() if n.endswith("gate.weight")}
    assert any(not torch.equal(before[n], after[n]) for n in before)
    out = model.score([p.prompt for p in pairs], [p.chosen for p in pairs], return_output=True)
    assert out.domain_probs.shape == (len(pairs), 2)  # the supervised gate reports like a router


def test_parameter_report_counts_active_experts(minilm):
    cfg = MoREConfig(backbone=SHORT, domains=["a", "b", "c", "d"], gate_supervision=0.1)
    model = MoRERewardModel(cfg, copy.deepcopy(minilm))
    rep = model.param_report()
    ffn = model.blocks[0].expert_parameters()
    assert rep["total"] - rep["active_per_token"] == 2 * (4 - 2) * ffn
    assert rep["loaded_for_inference"] == rep["total"] > sum(p.numel() for p in minilm.parameters())


def test_save_reload_identical_and_wrong_arch(trained):
    model, pairs, _, _, out = trained
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    again = load_model(out, expect_arch="more")
    assert torch.equal(model.score(prompts, responses), again.score(prompts, responses))
    with pytest.raises(CheckpointError, match="'more' reward model, not 'rodos'"):
        load_model(out, expect_arch="rodos")


def test_empty_and_very_long_texts(trained):
    model = trained[0]
    r = model.score(["", "x " * 50_000, "short"], ["", "", "y " * 50_000])
    assert r.shape == (3,) and torch.isfinite(r).all()


def test_evaluation_reports_what_the_gate_learned(trained):
    from rewardroute.eval.pairwise import evaluate_reward_model, expert_load

    model, pairs, _, _, _ = trained
    res = evaluate_reward_model(model, pairs)
    load = res["expert_load"]
    assert set(load) == {"chat", "math"} and all(set(row) == {"chat", "math"} for row in load.values())
    for row in load.values():  # each row is a mean of gate distributions
        assert sum(row.values()) == pytest.approx(1.0, abs=1e-4)
    out = model.score([p.prompt for p in pairs], [p.chosen for p in pairs], return_output=True)
    math_rows = [i for i, p in enumerate(pairs) if p.domain == "math"]
    assert load["math"]["chat"] == pytest.approx(out.domain_probs[math_rows, 0].mean().item(), abs=1e-5)
    # the matrix reads a known assignment back: rows by true domain, columns by expert
    probs = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8]])
    assert expert_load(probs, ["a", "a", "b"], ["x", "y"]) == {
        "a": pytest.approx({"x": 0.8, "y": 0.2}), "b": pytest.approx({"x": 0.2, "y": 0.8})}
