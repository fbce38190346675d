"""The `human` domain: people's pairwise preferences, built from the shipped files.

The counts asserted here are the ones the SOURCE.md files of datasets/allenai-FineGrainedRLHF,
datasets/UKPLab-arxiv2024-lfqa-hallucination and datasets/princeton-nlp-LLMBar, and datasets/README.md,
state; a change to a builder's rules must change both.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from rewardroute.data.build import build_dataset, longer_wins
from rewardroute.data.readers import read_pairs
from rewardroute.data.schemas import render_prompt
from rewardroute.data.sources import DEFAULT_DOMAINS, PAIR_BUILDERS
from rewardroute.data.sources.human import (HaluQuestQAPairs, LLMBarNaturalPairs, MTBenchHumanPairs,
                                             QAFeedbackPairs)
from rewardroute.data.split import split_records
from rewardroute.data.schemas import PreferencePair
from rewardroute.errors import DataError

REPO = Path(__file__).resolve().parents[1]
PUBLIC_DATA = Path(os.environ.get("REWARDROUTE_DATA") or REPO / "datasets")

# source -> (pairs, distinct prompts), as SOURCE.md states
EXPECTED = {"qa_feedback": (2616, 488), "haluquestqa": (698, 698), "llmbar_natural": (100, 100),
            "mt_bench_human": (195, 75)}
# split -> (pairs, prompts), as SOURCE.md states; test is the held-out human test
EXPECTED_SPLITS = {"train": (2271, 838), "valid": (630, 255), "test": (708, 268)}
# split -> share of pairs whose chosen answer is the longer one (the labels' length bias), as SOURCE.md states
LONGER_WINS = {"train": 0.5841, "valid": 0.5460, "test": 0.5742}


@pytest.fixture(scope="module")
def human_pairs():
    return [p for cls in PAIR_BUILDERS["human"] for p in cls().build(PUBLIC_DATA)]


def test_human_is_opt_in():
    assert "human" in PAIR_BUILDERS and "human" not in DEFAULT_DOMAINS


def test_counts_match_source_md(human_pairs):
    by_source = defaultdict(list)
    for p in human_pairs:
        by_source[p.source].append(p)
    got = {s: (len(ps), len({render_prompt(p.prompt) for p in ps})) for s, ps in by_source.items()}
    assert got == EXPECTED
    assert {p.domain for p in human_pairs} == {"human"}


def test_builder_notes_match_source_md():
    qa = QAFeedbackPairs()
    qa.build(PUBLIC_DATA)
    assert qa.notes() == {"questions": 500, "no_preference_dropped": 384}
    mt = MTBenchHumanPairs()
    mt.build(PUBLIC_DATA)
    assert mt.notes() == {"repeated_pairs_dropped": 5, "conflicting_pairs_dropped": 0}


def test_pairs_are_real_and_ids_unique(human_pairs):
    assert all(p.chosen.strip() and p.rejected.strip() for p in human_pairs)
    assert not [p.id for p in human_pairs if p.chosen == p.rejected]
    ids = Counter(p.id for p in human_pairs)
    assert not [i for i, n in ids.items() if n > 1]


def test_one_prompt_per_question(human_pairs):
    # every pair of one qa_feedback question shares the prompt text, so the split cannot divide it
    prompts = defaultdict(set)
    for p in human_pairs:
        if p.source == "qa_feedback":
            prompts[p.id.split(":")[1]].add(render_prompt(p.prompt))
    assert len(prompts) == 488 and all(len(v) == 1 for v in prompts.values())


def test_three_splits_non_empty_with_stated_counts(human_pairs):
    splits = split_records(human_pairs, key=PreferencePair.group_key, text=lambda p: render_prompt(p.prompt))
    got = {s: (len(ps), len({render_prompt(p.prompt) for p in ps})) for s, ps in splits.items()}
    assert got == EXPECTED_SPLITS
    # no prompt in two splits
    seen = [{render_prompt(p.prompt) for p in ps} for ps in splits.values()]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])


def test_build_writes_human_domain(tmp_path):
    report = build_dataset(PUBLIC_DATA, tmp_path, domains=["human"], routing=False)
    test_rows = read_pairs(tmp_path / "prefs" / "test.jsonl")
    assert len(test_rows) == EXPECTED_SPLITS["test"][0]
    assert {r.domain for r in test_rows} == {"human"}
    assert set(report.sources) == set(EXPECTED)
    for split, share in LONGER_WINS.items():
        assert longer_wins(read_pairs(tmp_path / "prefs" / f"{split}.jsonl")) == pytest.approx(share, abs=5e-5)


def test_qa_prompt_has_passages_then_question(human_pairs):
    p = next(p for p in human_pairs if p.source == "qa_feedback")
    assert p.prompt.startswith("Passages:\n") and "\nQuestion: " in p.prompt
    bare = QAFeedbackPairs(with_passages=False).build(PUBLIC_DATA)
    assert len(bare) == EXPECTED["qa_feedback"][0]
    assert all(not b.prompt.startswith("Passages") for b in bare)
    assert len(bare[0].prompt) < len(p.prompt)


# ---------------------------------------------------------------- bad input and the tie/repeat rules

def _write(root: Path, rel: str, rows: list[dict]) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def _qa_row(prefs) -> dict:
    return {"question": "Who?", "passages": [["T", "T\n\nText.", "More."]],
            **{f"prediction {i}": f"answer {i}" for i in range(1, 5)}, "preference": prefs}


def test_qa_feedback_ties_dropped_and_direction(tmp_path):
    _write(tmp_path, QAFeedbackPairs.required_files[0], [_qa_row([1, 2, 0, 0, 0, 1])])
    pairs = QAFeedbackPairs().build(tmp_path)
    assert [(p.chosen, p.rejected) for p in pairs] == [
        ("answer 1", "answer 2"), ("answer 3", "answer 1"), ("answer 3", "answer 4")]
    assert pairs[0].prompt == "Passages:\nT\n\nText. More.\n\nAnswer the question in a few sentences " \
                              "using the passages above.\nQuestion: Who?"


@pytest.mark.parametrize("row, field", [
    ({**_qa_row([1, 2, 0, 0, 0, 3])}, "preference[5]"),
    ({**_qa_row([1, 2, 0, 0, 0, True])}, "preference[5]"),
    ({**_qa_row([1, 2])}, "preference"),
    ({**_qa_row([1] * 6), "prediction 3": ""}, "prediction 3"),
    ({**_qa_row([1] * 6), "passages": [["only a title"]]}, "passages"),
])
def test_qa_feedback_bad_row_names_file_line_field(tmp_path, row, field):
    _write(tmp_path, QAFeedbackPairs.required_files[0], [_qa_row([1] * 6), row])
    with pytest.raises(DataError) as e:
        QAFeedbackPairs().build(tmp_path)
    assert e.value.line == 2 and e.value.field == field and "dev_feedback.jsonl.gz:2" in str(e.value)


def test_llmbar_repeats_kept_once_conflicts_dropped(tmp_path):
    rows = [{"input": "Q1", "output_1": "a", "output_2": "b", "label": 1},
            {"input": "Q1", "output_1": "b", "output_2": "a", "label": 2},   # same pair, same verdict
            {"input": "Q2", "output_1": "c", "output_2": "d", "label": 1},
            {"input": "Q2", "output_1": "c", "output_2": "d", "label": 2},   # same pair, opposite verdict
            {"input": "Q3", "output_1": "e", "output_2": "f", "label": 2}]
    _write(tmp_path, LLMBarNaturalPairs.required_files[0], rows)
    b = LLMBarNaturalPairs()
    pairs = b.build(tmp_path)
    assert [(p.id, p.chosen, p.rejected) for p in pairs] == [
        ("llmbar_natural:1", "a", "b"), ("llmbar_natural:5", "f", "e")]
    assert b.notes() == {"repeated_pairs_dropped": 2, "conflicting_pairs_dropped": 1}


def test_llmbar_bad_label_names_field(tmp_path):
    _write(tmp_path, LLMBarNaturalPairs.required_files[0], [{"input": "Q", "output_1": "a", "output_2": "b",
                                                            "label": 0}])
    with pytest.raises(DataError, match=r"dataset.jsonl.gz:1 field 'label'"):
        LLMBarNaturalPairs().build(tmp_path)


def test_haluquestqa_pairs_and_bad_row(tmp_path):
    rows = [{"source_file": "u1.txt", "question_text": "Why?", "preferred_response": "because",
             "rejected_response": "no"},
            {"source_file": "u2.txt", "question_text": "How?", "preferred_response": "same",
             "rejected_response": "same"}]                                     # identical texts: skipped
    _write(tmp_path, HaluQuestQAPairs.required_files[0], rows)
    pairs = HaluQuestQAPairs().build(tmp_path)
    assert [(p.id, p.prompt, p.chosen, p.rejected) for p in pairs] == [("haluquestqa:u1", "Why?", "because", "no")]
    _write(tmp_path, HaluQuestQAPairs.required_files[0], rows[:1] + [{**rows[0], "rejected_response": None}])
    with pytest.raises(DataError, match=r"preference_data.jsonl.gz:2 field 'rejected_response'"):
        HaluQuestQAPairs().build(tmp_path)
