"""The truncation rule keeps the response's start and the prompt's end."""

import pytest

from rewardroute.backbone import Backbone, BackboneConfig


@pytest.fixture(scope="module")
def backbone():
    return Backbone.load(BackboneConfig(max_length=32))


def _decode(bb, ids):
    return bb.tokenizer.decode(ids)


def test_short_pair_is_kept_whole(backbone):
    enc = backbone.pairs.encode_pairs(["hello there"], ["general kenobi"])[0]
    text = _decode(backbone, enc.input_ids)
    assert "hello there" in text and "general kenobi" in text
    assert enc.input_ids[0] == backbone.tokenizer.cls_token_id
    assert enc.token_type_ids.count(1) == len(backbone.tokenizer("general kenobi", add_special_tokens=False)["input_ids"]) + 1


def test_long_prompt_keeps_its_end_and_the_whole_response(backbone):
    prompt = " ".join(f"word{i}" for i in range(200)) + " FINAL QUESTION"
    response = "short answer"
    enc = backbone.pairs.encode_pairs([prompt], [response])[0]
    text = _decode(backbone, enc.input_ids)
    assert len(enc.input_ids) == 32
    assert "final question" in text  # the end of the prompt survives
    assert "word0 " not in text  # its beginning is cut
    assert text.rstrip().endswith("short answer [SEP]")


def test_long_response_keeps_its_start_and_a_share_of_the_prompt(backbone):
    prompt = "please answer this question about cats"
    response = "START " + " ".join(f"tok{i}" for i in range(300))
    enc = backbone.pairs.encode_pairs([prompt], [response])[0]
    text = _decode(backbone, enc.input_ids)
    assert len(enc.input_ids) == 32
    assert "start" in text
    n_prompt = enc.token_type_ids.count(0) - 2  # minus [CLS] and the middle [SEP]
    budget = 32 - 3
    assert n_prompt == min(len(backbone.tokenizer(prompt, add_special_tokens=False)["input_ids"]), int(budget * 0.25))
    assert "cats" in text  # the prompt's end is what stays


def test_empty_and_huge_texts(backbone):
    huge = "x " * 500_000
    encs = backbone.pairs.encode_pairs(["", huge, ""], ["", "", huge])
    assert all(len(e.input_ids) <= 32 for e in encs)
    assert encs[0].input_ids == [backbone.tokenizer.cls_token_id, backbone.tokenizer.sep_token_id,
                                 backbone.tokenizer.sep_token_id]
    batch = backbone.pairs.pad(encs)
    assert batch["input_ids"].shape[0] == 3
    assert batch["attention_mask"][0].sum().item() == 3


def test_split_budget_rule(backbone):
    split = backbone.pairs.split_budget
    assert split(10, 10, 100) == (10, 10)
    assert split(1000, 10, 100) == (90, 10)
    assert split(1000, 1000, 100) == (25, 75)
    assert split(5, 1000, 100) == (5, 95)
