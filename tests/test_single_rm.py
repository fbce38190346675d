"""The baseline reward model: trains, saves atomically, reloads to identical rewards."""

import json

import pytest
import torch

from rewardroute.backbone import BackboneConfig
from rewardroute.errors import CheckpointError
from rewardroute.reward import load_model, save_model
from rewardroute.reward.reward_config import RewardTrainingConfig
from rewardroute.data.sampling import cap_pairs
from rewardroute.reward.reward_trainer import train_reward_model
from rewardroute.reward.single import SingleConfig, SingleRewardModel


@pytest.fixture(scope="module")
def trained(tmp_path_factory, request):
    from rewardroute.data.schemas import PreferencePair
    pairs = []
    for i in range(24):
        pairs.append(PreferencePair(id=f"m{i}", prompt=f"What is {i} plus {i}?", chosen=f"{i} plus {i} is {2 * i}.",
                                    rejected="No idea, sorry.", domain="math"))
        pairs.append(PreferencePair(id=f"c{i}", prompt=f"Say something kind about topic {i}.",
                                    chosen=f"Topic {i} is wonderful and worth learning about.",
                                    rejected="Go away.", domain="chat"))
    out = tmp_path_factory.mktemp("rm") / "single"
    model = SingleRewardModel.build(SingleConfig(backbone=BackboneConfig(max_length=48), domains=["chat", "math"]))
    args = RewardTrainingConfig(epochs=2, batch_size=8, lr=1e-4, seed=3)
    result = train_reward_model(model, pairs[:36], pairs[36:], args, out)
    return model, out, pairs, result


def test_training_learns_the_pairs(trained):
    model, _, pairs, result = trained
    assert result.best_epoch >= 1
    assert len(result.history) == 2
    r_c = model.score([p.prompt for p in pairs], [p.chosen for p in pairs])
    r_r = model.score([p.prompt for p in pairs], [p.rejected for p in pairs])
    assert (r_c > r_r).float().mean().item() >= 0.9


def test_save_reload_score_identical(trained):
    model, out, pairs, _ = trained
    assert {"config.json", "model.safetensors", "backbone"} <= {p.name for p in out.iterdir()}
    assert not out.with_name(out.name + ".resume").exists()  # resume state removed after success
    meta = json.loads((out / "config.json").read_text())
    assert meta["arch"] == "single" and meta["extra"]["training"]["best_epoch"] >= 1
    again = load_model(out)
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    assert torch.equal(model.score(prompts, responses), again.score(prompts, responses))
    # batch size and order must not change a pair's reward beyond float noise
    shuffled = again.score(prompts[::-1], responses[::-1], batch_size=5).flip(0)
    assert torch.allclose(shuffled, model.score(prompts, responses), atol=1e-5)


def test_checkpoint_errors_say_why(trained, tmp_path):
    _, out, _, _ = trained
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        load_model(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="no config.json"):
        load_model(tmp_path)
    with pytest.raises(CheckpointError, match="is a 'single' reward model, not 'arliss'"):
        load_model(out, expect_arch="arliss")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((out / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_model(broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="malformed JSON"):
        load_model(broken)


def test_save_is_atomic_on_failure(trained, tmp_path, monkeypatch):
    model, _, _, _ = trained
    target = tmp_path / "ckpt"
    save_model(model, target)
    before = sorted(p.name for p in target.iterdir())

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr("rewardroute.reward.checkpoint.write_meta", boom)
    with pytest.raises(OSError):
        save_model(model, target)
    assert sorted(p.name for p in target.iterdir()) == before  # the old checkpoint is intact
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ckpt")]  # no temp left


def test_cap_pairs_is_even_and_deterministic(toy_pairs):
    capped = cap_pairs(toy_pairs, 10, seed=1)
    assert len(capped) == 10
    assert sum(p.domain == "math" for p in capped) == 5
    assert [p.id for p in capped] == [p.id for p in cap_pairs(toy_pairs, 10, seed=1)]


def test_balance_length_leaves_length_without_signal() -> None:
    from rewardroute.data.schemas import PreferencePair
    from rewardroute.eval.baselines import longer_wins_correct
    from rewardroute.data.sampling import balance_length

    # 30 pairs where the longer answer wins, 6 where the shorter one does, 2 ties
    pairs = [PreferencePair(id=f"l{i}", prompt=f"q{i}", chosen="long " * 5, rejected="s", domain="chat")
             for i in range(30)]
    pairs += [PreferencePair(id=f"s{i}", prompt=f"r{i}", chosen="s", rejected="long " * 5, domain="chat")
              for i in range(6)]
    pairs += [PreferencePair(id=f"t{i}", prompt=f"t{i}", chosen="ab", rejected="cd", domain="chat") for i in range(2)]
    assert longer_wins_correct(pairs).mean() > 0.75
    picked = balance_length(pairs, 20, seed=0)
    assert len(picked) == 12 and longer_wins_correct(picked).mean() == 0.5  # 6 of each, no ties
    assert picked == balance_length(pairs, 20, seed=0)
    assert len(balance_length(pairs, 4, seed=0)) == 4 and len(balance_length(pairs, None, seed=1)) == 12



def test_attention_dropout_off_is_applied_saved_and_reloaded(tmp_path):
    """`backbone.attention_dropout=0` reaches every attention layer and survives a save; the
    default keeps the checkpoint's 0.1."""
    def attention_dropouts(model):
        return {m.dropout.p for m in model.modules()
                if type(m).__name__.endswith("Attention") and isinstance(getattr(m, "dropout", None), torch.nn.Dropout)}

    default = SingleRewardModel.build(SingleConfig(backbone=BackboneConfig(max_length=32)))
    off = SingleRewardModel.build(SingleConfig(backbone=BackboneConfig(max_length=32, attention_dropout=0.0)))
    assert attention_dropouts(default) == {0.1} and attention_dropouts(off) == {0.0}
    assert off.backbone.model.config.attention_probs_dropout_prob == 0.0
    save_model(off, tmp_path / "m")
    assert attention_dropouts(load_model(tmp_path / "m")) == {0.0}


def test_freeze_layers_trains_only_the_top_and_the_head(toy_pairs):
    """`backbone.freeze_layers=4` of MiniLM's 6: the embeddings and the lowest 4 layers keep their
    weights through training, the top 2 and the head move."""
    cfg = SingleConfig(backbone=BackboneConfig(max_length=32, freeze_layers=4))
    model = SingleRewardModel.build(cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.fit(toy_pairs[:16], [], RewardTrainingConfig(epochs=1, batch_size=8, device="cpu", resume=False))
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved and all(".layer.4." in n or ".layer.5." in n or not n.startswith("backbone.") for n in moved), moved
    assert any(".layer.5." in n for n in moved) and any(not n.startswith("backbone.") for n in moved)
    with pytest.raises(Exception, match="has 6 layers"):
        SingleRewardModel.build(SingleConfig(backbone=BackboneConfig(freeze_layers=7)))
    from rewardroute.reward.arliss import ArlissConfig

    with pytest.raises(ValueError, match="does not apply to arliss"):  # its adapters train in every layer
        ArlissConfig(backbone=BackboneConfig(freeze_layers=2), domains=["a", "b"])


def test_attention_dropout_leaves_hidden_dropout_alone():
    """MPNet keeps its hidden dropout in a module named ...Attention: only the layer that forms the
    attention probabilities (it holds the query projection) changes."""
    from transformers import MPNetConfig, MPNetModel

    from rewardroute.backbone import set_attention_dropout

    model = MPNetModel(MPNetConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=32))
    set_attention_dropout(model, 0.0)
    layer = model.encoder.layer[0].attention
    assert layer.attn.dropout.p == 0.0 and layer.dropout.p == 0.1
