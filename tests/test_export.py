"""Checkpoints others load: `rm export` for plain transformers, arliss adapters for plain PEFT."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from rewardroute.backbone import BackboneConfig
from rewardroute.cli import app
from rewardroute.reward import load_model, save_model
from rewardroute.reward.single import SingleConfig, SingleRewardModel

runner = CliRunner()
PROMPTS = ["What is 2+2?", "Write a haiku about autumn.", "Summarise: the cat sat on the mat all day."]
RESPONSES = ["4", "Leaves drift, cold wind sighs, the year lets go.", "A cat spent the day on a mat."]


@pytest.fixture(scope="module")
def single_dir(tmp_path_factory):
    torch.manual_seed(3)
    model = SingleRewardModel.build(SingleConfig(backbone=BackboneConfig(max_length=64)))
    with torch.no_grad():  # a head that is not near zero, so a wrong pooling would show
        model.head.linear.weight.normal_(0, 0.5)
    return save_model(model, tmp_path_factory.mktemp("export") / "rm")


def test_exported_single_gives_the_same_rewards_in_plain_transformers(single_dir, tmp_path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    res = runner.invoke(app, ["rm", "export", "--model", str(single_dir), "--out", str(tmp_path / "hf"), "--json"])
    assert res.exit_code == 0, res.output
    ours = load_model(single_dir).score(PROMPTS, RESPONSES).tolist()
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf", trust_remote_code=True).eval()
    tok = AutoTokenizer.from_pretrained(tmp_path / "hf", trust_remote_code=True)
    with torch.no_grad():
        got = hf(**tok(PROMPTS, RESPONSES, return_tensors="pt", padding=True)).logits[:, 0].tolist()
    assert got == pytest.approx(ours, abs=1e-4)
    pipe = pipeline("text-classification", model=hf, tokenizer=tok)
    piped = [r["score"] for r in pipe([{"text": p, "text_pair": r} for p, r in zip(PROMPTS, RESPONSES)],
                                      function_to_apply="none")]
    assert piped == pytest.approx(ours, abs=1e-4)


def test_export_refuses_other_architectures_and_says_why(tmp_path, tmp_path_factory) -> None:
    from support.serve_models import routed_reward_model

    arliss_dir, _ = routed_reward_model(tmp_path_factory)
    res = runner.invoke(app, ["rm", "export", "--model", str(arliss_dir), "--out", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert "'arliss'" in res.output and "PEFT" in res.output


def test_arliss_adapter_loads_with_plain_peft_and_its_head_gives_the_same_reward(tmp_path_factory) -> None:
    from peft import AutoPeftModelForFeatureExtraction
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from rewardroute.backbone import pool
    from support.serve_models import routed_reward_model

    path, model = routed_reward_model(tmp_path_factory)
    adapter = path / "adapters" / "reward-math"
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert cfg["task_type"] == "FEATURE_EXTRACTION" and cfg["base_model_name_or_path"]
    peft_model = AutoPeftModelForFeatureExtraction.from_pretrained(str(adapter)).eval()
    tok = AutoTokenizer.from_pretrained(cfg["base_model_name_or_path"])
    head = load_file(str(adapter / "head.safetensors"))
    enc = tok(PROMPTS[:1], RESPONSES[:1], return_tensors="pt")
    with torch.no_grad():
        hidden = peft_model(**enc).last_hidden_state
        reward = pool(hidden, enc["attention_mask"], "mean") @ head["linear.weight"].T + head["linear.bias"]
    ours = model.score(PROMPTS[:1], RESPONSES[:1], domains=["math"]).tolist()
    assert reward[0, 0].item() == pytest.approx(ours[0], abs=1e-4)
