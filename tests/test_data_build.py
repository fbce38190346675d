"""`data build` on the real public data: splits, ids, pairing rules, routing tables, errors, CLI."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import json
import os
import shutil
import tracemalloc
from collections import Counter, defaultdict
from pathlib import Path
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from rewardroute.cli import app
from rewardroute.data import build as build_module
from rewardroute.data.build import ENV_SOURCE, build_dataset, default_source_dir, longer_wins, make_builder
from rewardroute.data.readers import read_pairs, read_routing
from rewardroute.data.schemas import PreferencePair, render_prompt
from rewardroute.data.sources import DEFAULT_DOMAINS, PAIR_BUILDERS
from rewardroute.data.sources.alpaca_eval import AlpacaEvalPairs
from rewardroute.data.sources.can_ai_code import CanAiCodeData
from rewardroute.data.sources.hh_rlhf import split_dialogue, to_messages
from rewardroute.data.sources.humaneval import HumanEvalRuns
from rewardroute.data.sources.model_names import can_ai_code_base_model, humaneval_base_model, known_hub_names
from rewardroute.data.sources.pairing import Rated, balanced_sample, dedupe_judged, pass_fail_pairs, rated_pairs
from rewardroute.data.sources.squality import SQuALITYPairs
from rewardroute.data.sources.summeval import ASPECTS, SummEvalPairs
from rewardroute.data.sources.base import PairBuilder
from rewardroute.data.split import (AFFIX_CHARS, SPLITS, affix_digests, affixes, merged_digest_groups, merged_groups,
                                    split_of, split_records)
from rewardroute.errors import DataError, SourceMissingError
from rewardroute.io import to_json_line

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("REWARDROUTE_DATA") or REPO / "datasets")
runner = CliRunner()


def _flat(text: str) -> str:
    """Rich wraps long lines; compare with the wrapping undone."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def built(built_data: Path) -> Path:
    return built_data


@pytest.fixture(scope="module")
def splits(built: Path) -> dict[str, list[PreferencePair]]:
    return {s: read_pairs(built / "prefs" / f"{s}.jsonl") for s in SPLITS}


@pytest.fixture(scope="module")
def by_domain(splits: dict[str, list[PreferencePair]]) -> dict[str, list[PreferencePair]]:
    out: dict[str, list[PreferencePair]] = defaultdict(list)
    for pairs in splits.values():
        for p in pairs:
            out[p.domain].append(p)
    return out


# ---------------------------------------------------------------- split function (no data needed)

def test_split_of_is_a_stable_60_20_20_hash() -> None:
    texts = [f"prompt number {i}" for i in range(5000)]
    counts = Counter(split_of(t) for t in texts)
    assert set(counts) == set(SPLITS)
    assert 0.57 < counts["train"] / 5000 < 0.63 and 0.17 < counts["valid"] / 5000 < 0.23
    assert [split_of(t) for t in texts[:50]] == [split_of(t) for t in texts[:50]]
    grouped = split_records(texts, key=lambda t: t)
    assert sum(len(v) for v in grouped.values()) == 5000
    assert all(split_of(t) == s for s, ts in grouped.items() for t in ts)


def test_groups_sharing_a_prefix_or_suffix_are_merged_into_one_split() -> None:
    story = "Once upon a time " * 30  # > 200 chars: two questions about it share their prefix
    recs = [(f"q{i}", story + f"Question {i}?") for i in range(40)]
    recs += [(f"t{i}", f"Task {i} in Python." + " shared fact and description" * 10) for i in range(40)]
    recs += [(f"u{i}", f"unrelated prompt {i}") for i in range(200)]
    out = split_records(recs, key=lambda r: r[0], text=lambda r: r[1])
    where = {r[0]: s for s, rs in out.items() for r in rs}
    assert len({where[f"q{i}"] for i in range(40)}) == 1  # one shared prefix: one split
    assert len({where[f"t{i}"] for i in range(40)}) == 1  # one shared suffix: one split
    assert len({where[f"u{i}"] for i in range(200)}) == 3  # the rest still spread over all three
    # whitespace and case do not hide a near-duplicate; the merged group is hashed by its smallest key
    roots = merged_groups(["b", "a", "c"], ["Hello   World " * 20, "hello world " * 20, "other"])
    assert roots == {"a": "a", "b": "a", "c": "c"}
    # without texts, the group key alone decides
    plain = split_records(recs, key=lambda r: r[0])
    assert all(split_of(r[0]) == s for s, rs in plain.items() for r in rs)


def _text_rule(keys: list[str], texts: list[str]) -> dict[str, str]:
    """The merge rule spelled out on the texts, as the build applied it before it streamed: the
    connected components of group keys linked by a shared normalised prefix (or suffix), each
    named by its smallest key. No digests, no union-find: an independent oracle."""
    keys_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    affixes_of: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for key, text in zip(keys, texts):
        head, tail = affixes(text)
        for affix in (("head", head), ("tail", tail)):
            keys_of[affix].add(key)
            affixes_of[key].add(affix)
    root: dict[str, str] = {}
    for key in affixes_of:
        if key in root:
            continue
        component, todo, done = {key}, [key], set()
        while todo:
            for affix in affixes_of[todo.pop()] - done:
                done.add(affix)
                todo += keys_of[affix] - component
                component |= keys_of[affix]
        root.update(dict.fromkeys(component, min(component)))
    return root


def test_affix_digest_grouping_is_the_text_rule() -> None:
    long = "a shared opening of a story, long enough to fill the whole prefix window. " * 4
    end = " and the same long closing paragraph that every one of these tasks ends with." * 4
    cases = [
        ("k5", long + "first question?"), ("k3", long + "second question?"),  # one prefix
        ("k9", "Another start. " * 20 + end), ("k3", "task three " * 30 + end),  # a suffix links k3 again
        ("k7", "LOUDER  " + "x " * 150 + "tail"), ("k8", "louder " + "X " * 150 + "TAIL"),  # case, spaces
        ("k6", "p" * AFFIX_CHARS + " then its own end" * 12), ("k0", "its own start " * 15 + "p" * AFFIX_CHARS),
        ("k1", "short"), ("k4", "short"), ("k2", "other short"),  # k6's prefix is k0's suffix: no merge
        ("k5", "k5 again with another text " * 10),  # a key with two prompts brings both affixes
        ("k10", "k5 again with another text " * 10 + "!"),
    ]
    keys, texts = [k for k, _ in cases], [t for _, t in cases]
    expected = _text_rule(keys, texts)
    assert expected == {"k5": "k10", "k3": "k10", "k9": "k10", "k10": "k10", "k7": "k7", "k8": "k7", "k6": "k6",
                        "k0": "k0", "k1": "k1", "k4": "k1", "k2": "k2"}  # k10 < k3 < k5 < k9 as strings
    assert merged_groups(keys, texts) == expected
    assert merged_digest_groups(zip(keys, map(affix_digests, texts))) == expected
    assert merged_digest_groups(reversed(list(zip(keys, map(affix_digests, texts))))) == expected  # any order
    assert all(len(d) == 16 for t in texts for d in affix_digests(t))


def test_longer_wins_counts_ties_half() -> None:
    mk = lambda c, r: PreferencePair(id=c + r, prompt="p", chosen=c, rejected=r, domain="d")  # noqa: E731
    assert longer_wins([mk("long", "s"), mk("s", "long"), mk("ab", "cd"), mk("abc", "d")]) == pytest.approx(2.5 / 4)
    assert longer_wins([]) is None


# ---------------------------------------------------------------- pairing helpers (no data needed)

def test_balanced_sample_is_capped_seeded_and_spread() -> None:
    items = [(a, b) for a in "abcdef" for b in "abcdef" if a < b]  # 15 pairs over 6 keys
    picked = balanced_sample(items, 3, "seed", keys=lambda p: p)
    assert len(picked) == 3 and picked == balanced_sample(items, 3, "seed", keys=lambda p: p)
    assert Counter(k for p in picked for k in p).most_common(1)[0][1] == 1  # 3 disjoint pairs exist
    assert balanced_sample(items[:2], 5, "seed", keys=lambda p: p) == items[:2]


def test_rated_pairs_drop_ties_small_gaps_empty_and_identical_texts() -> None:
    answers = [Rated("a", "alpha", 0.9), Rated("b", "beta", 0.85), Rated("c", "gamma", 0.2),
               Rated("d", "", 0.0), Rated("e", "alpha", 0.1), Rated("f", "phi", 0.2)]
    got = {(w.key, lo.key) for w, lo in rated_pairs(answers, min_gap=0.1, cap=10, seed="s")}
    # a-b gap too small, c-f tie, d empty, a-e identical text
    assert got == {("a", "c"), ("a", "f"), ("b", "c"), ("b", "e"), ("b", "f"), ("c", "e"), ("f", "e")}
    assert len(rated_pairs(answers, min_gap=0.1, cap=2, seed="s")) == 2


def test_pass_fail_pairs_never_pair_one_base_model_and_drop_unsure_texts() -> None:
    answers = dedupe_judged([("ok1", True, "m1"), ("ok1 ", True, "m2"), ("bad", False, "m1"), ("bad", False, "m3"),
                             ("flaky", True, "m4"), ("flaky", False, "m5"), ("bad2", False, "m4"), ("", False, "m6")])
    assert {a.text for a in answers} == {"ok1", "bad", "bad2"}  # merged, flaky and empty dropped
    pairs = pass_fail_pairs(answers, cap=10, seed="s")
    assert [(g.text, b.text) for g, b in pairs] == [("ok1", "bad2")]  # "bad" shares m1 with "ok1"
    assert pairs[0][0].groups == {"m1", "m2"} and pairs[0][0].label == "m1"


def test_base_model_names() -> None:
    assert humaneval_base_model("TheBloke_guanaco-65B-GPTQ_ALPACA_MEDIUM") == "guanaco-65b"
    assert humaneval_base_model("TheBloke_vicuna-13B-1.1-GPTQ-4bit-128g_VICUNA_MARKDOWN") == "vicuna-13b-1.1"
    assert humaneval_base_model("Claude_Plus_custom_md") == "claude_plus" != humaneval_base_model("Claude_custom")
    assert humaneval_base_model("gpt4_final_500c_long") == "gpt4"
    models = ["codellama/CodeLlama-7b-Instruct-hf", "TheBloke/CodeLlama-7B-Instruct-AWQ", "meta-llama/Llama-2-7b-chat-hf",
              "Phind/Phind-CodeLlama-34B-v2", "phind-codellama-34b-v2.Q4_K_M", "Qwen/Qwen3-8B", "Qwen_Qwen3-8B-Q6_K",
              "mistral/mistral-large-2402", "mistral-7b-instruct-v0.1.Q5_K_M", "LoneStriker/Nous-Hermes-2-Yi-34B-4.0bpw-h6-exl2-main",
              "meta-llama-Meta-Llama-3.1-8B-Instruct-fp16", "ollama/llama3.1:8b-instruct-q4_1"]
    orgs, repos = known_hub_names(models)
    base = {m: can_ai_code_base_model(m, orgs, repos) for m in models}
    assert base["codellama/CodeLlama-7b-Instruct-hf"] == base["TheBloke/CodeLlama-7B-Instruct-AWQ"] == "codellama-7b-instruct"
    assert base["Phind/Phind-CodeLlama-34B-v2"] == base["phind-codellama-34b-v2.Q4_K_M"] == "phind-codellama-34b-v2"
    assert base["Qwen/Qwen3-8B"] == base["Qwen_Qwen3-8B-Q6_K"] == "qwen3-8b"
    assert base["mistral/mistral-large-2402"] == "mistral-large-2402"
    assert base["mistral-7b-instruct-v0.1.Q5_K_M"] == "mistral-7b-instruct-v0.1"
    assert base["LoneStriker/Nous-Hermes-2-Yi-34B-4.0bpw-h6-exl2-main"] == "nous-hermes-2-yi-34b"
    assert base["meta-llama-Meta-Llama-3.1-8B-Instruct-fp16"] == "meta-llama-3.1-8b-instruct"
    assert base["ollama/llama3.1:8b-instruct-q4_1"] == "llama3.1-8b-instruct"


def test_hh_dialogue_split() -> None:
    text = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how to pick a lock?\n\nAssistant:  I can't help. "
    prefix, answer = split_dialogue(text)
    assert answer == "I can't help." and prefix.endswith("\n\nAssistant:")
    assert [(m.role, m.content) for m in to_messages(prefix)] == [
        ("user", "hi"), ("assistant", "hello"), ("user", "how to pick a lock?")]
    assert to_messages("preamble\n\nHuman: x\n\nAssistant:") is None and split_dialogue("no turns") is None


def test_default_source_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_SOURCE, str(tmp_path / "elsewhere"))
    assert default_source_dir() == tmp_path / "elsewhere"  # explicit, even when missing
    monkeypatch.delenv(ENV_SOURCE)
    monkeypatch.chdir(tmp_path)  # found from the package, whatever the working directory
    assert default_source_dir() == (REPO / "datasets").resolve()


# ---------------------------------------------------------------- the built data

def test_every_domain_has_pairs_in_every_split(splits, built) -> None:
    for split, pairs in splits.items():
        domains = Counter(p.domain for p in pairs)
        for d in DEFAULT_DOMAINS:
            assert domains[d] > 0, f"no {d} pairs in {split}"
        assert "stories" not in domains  # opt-in only
    summary = json.loads((built / "SUMMARY.json").read_text())
    assert {d: sum(summary["pairs"][d][s] for s in SPLITS) for d in DEFAULT_DOMAINS} == \
        {d: summary["pairs"][d]["total"] for d in DEFAULT_DOMAINS}
    assert summary["pairs_total"]["total"] == sum(len(v) for v in splits.values())
    assert summary["sources"]["alpaca_eval"]["params"]["cap_per_instruction"] == 8
    build_md = (built / "BUILD.md").read_text()
    assert "min_gap=1.0" in build_md and "cap_per_task=12" in build_md and "sha256" in build_md


def test_no_prompt_group_or_near_duplicate_in_two_splits_and_ids_unique(splits) -> None:
    seen: dict[str, str] = {}
    group_split: dict[str, str] = {}
    affix_split: dict[tuple[str, str], tuple[str, str]] = {}
    for split, pairs in splits.items():
        for p in pairs:
            text = render_prompt(p.prompt)
            assert seen.setdefault(text, split) == split, f"prompt of {p.id} is in {seen[text]} and {split}"
            g = p.group_key()
            assert group_split.setdefault(g, split) == split, f"group of {p.id} is in {group_split[g]} and {split}"
            head, tail = affixes(text)
            for affix in (("first", head), ("last", tail)):
                other_split, other_id = affix_split.setdefault(affix, (split, p.id))
                assert other_split == split, (f"{p.id} ({split}) and {other_id} ({other_split}) share their "
                                              f"normalised {affix[0]} {AFFIX_CHARS} chars: {affix[1][:80]!r}")
    ids = [p.id for pairs in splits.values() for p in pairs]
    assert len(ids) == len(set(ids))
    # a sizeable share of prompts in each split, not just a handful
    shares = Counter(seen.values())
    assert shares["train"] > 2 * shares["valid"] and shares["valid"] > 0 and shares["test"] > 0


def test_group_keys_keep_stories_tasks_and_opening_turns_together(by_domain) -> None:
    summ = [p for p in by_domain["summarization"] if p.source == "squality"]
    assert summ and all(p.group == "squality:" + p.id.split(":")[1] for p in summ)
    code = [p for p in by_domain["code"] if p.source == "can-ai-code"]
    langs = defaultdict(set)
    for p in code:
        langs[p.group].add(p.id.split(":")[1].split("/")[1])
    assert any(len(v) == 2 for v in langs.values())  # one group holds the task in both languages
    safety = by_domain["safety"]
    assert all(p.group == "hh-rlhf:" + " ".join(p.prompt[0].content.split()).lower() for p in safety)
    assert len({p.group for p in safety}) < len({render_prompt(p.prompt) for p in safety})  # reopened turns
    assert all(p.group is None for d in ("math", "chat") for p in by_domain[d])


def test_every_domain_has_enough_prompt_groups_to_test_on(built) -> None:
    """60/20/20 by group: at least 18 groups per domain in valid and in test (see data/split.py)."""
    units = json.loads((built / "SUMMARY.json").read_text())["prompts"]
    for d in DEFAULT_DOMAINS:
        assert min(units[d]["valid"]["groups"], units[d]["test"]["groups"]) >= 18, (d, units[d])


def test_safety_prompts_are_dialogues_ending_on_a_user_turn(by_domain) -> None:
    pairs = by_domain["safety"]
    assert 2200 < len(pairs) <= 2312
    for p in pairs:
        assert isinstance(p.prompt, list) and p.prompt[-1].role == "user"
        assert p.chosen and p.rejected and p.chosen != p.rejected
        assert "\n\nHuman:" not in p.chosen and "\n\nAssistant:" not in p.prompt[-1].content


def test_math_chosen_is_the_correct_answer(by_domain) -> None:
    with open(DATA / "lm-sys-RouteLLM/gsm8k/gsm8k_responses.csv", encoding="utf-8", newline="") as f:
        rows = {r["prompt"].strip(): r for r in csv.DictReader(f)}
    pairs = by_domain["math"]
    assert len(pairs) == 478  # every row with exactly one correct answer
    for p in pairs:
        row = rows[p.prompt]
        right = [m for m in ("gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1") if row[m] == "True"]
        wrong = [m for m in ("gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1") if row[m] == "False"]
        assert len(right) == 1 and len(wrong) == 1
        assert p.chosen == row[f"{right[0]}_response"].strip()
        assert p.rejected == row[f"{wrong[0]}_response"].strip()


def test_chat_pairs_respect_gap_and_cap(by_domain) -> None:
    with gzip.open(DATA / "tatsu-lab-alpaca_eval/outputs_11_models.jsonl.gz", "rt", encoding="utf-8") as f:
        outputs = {str(r["id"]): r["responses"] for r in map(json.loads, f)}
    per_instruction: Counter[str] = Counter()
    for p in by_domain["chat"]:
        _source, iid, models = p.id.split(":", 2)
        winner, loser = models.split(">")
        per_instruction[iid] += 1
        w, lo = outputs[iid][winner], outputs[iid][loser]
        gap = w["win_prob_vs_gpt4_1106_preview"] - lo["win_prob_vs_gpt4_1106_preview"]
        assert gap >= AlpacaEvalPairs.min_gap - 1e-12
        assert p.chosen == w["output"].strip() and p.rejected == lo["output"].strip() and p.rejected
    assert max(per_instruction.values()) <= AlpacaEvalPairs.cap_per_instruction == 8
    assert len(per_instruction) > 780  # nearly every instruction contributes


def test_code_pairs_never_pair_one_base_model(by_domain) -> None:
    folder = DATA / "my-other-github-account-llm-humaneval-benchmarks"
    he = HumanEvalRuns.load(folder / "human-eval/HumanEval.jsonl.gz", folder / "exec_results_humaneval_base.jsonl.gz",
                            folder / "jsonl_examples")
    he_models: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (run, task), _ok in he.passed.items():
        he_models[(task, he.completions[run][task].strip())].add(humaneval_base_model(run))
    cac_dir = DATA / "the-crypt-keeper-can-ai-code"
    cac = CanAiCodeData.load(cac_dir / "results.jsonl.gz", cac_dir / "junior-v2", cac_dir / "senior")
    cac_models: dict[tuple[str, str], set[str]] = defaultdict(set)
    cac_pass: dict[tuple[str, str], set[bool]] = defaultdict(set)
    for r in cac.rows:
        key = (f"{r['interview']}/{r['language']}/{r['name']}", (r["answer"] or "").strip())
        cac_models[key].add(cac.base[r["model"]])
        cac_pass[key].add(r["status"] == "PASS")

    per_task: Counter[str] = Counter()
    sources = Counter()
    for p in by_domain["code"]:
        source, rest = p.id.split(":", 1)
        task = rest.rsplit(":", 1)[0]
        per_task[f"{source}:{task}"] += 1
        sources[source] += 1
        table = he_models if source == "humaneval" else cac_models
        good, bad = table[(task, p.chosen)], table[(task, p.rejected)]
        assert good and bad and not (good & bad), p.id
        assert p.chosen != p.rejected
        if source == "can-ai-code":
            assert cac_pass[(task, p.chosen)] == {True} and cac_pass[(task, p.rejected)] == {False}
        else:
            assert p.prompt == he.prompts[task]
    assert max(per_task.values()) <= 12
    assert sources["humaneval"] > 1000 and sources["can-ai-code"] > 300


def test_summarization_gaps_meet_the_documented_minimum(by_domain) -> None:
    with gzip.open(DATA / "maiush-PPairS/data/summeval.jsonl.gz", "rt", encoding="utf-8") as f:
        summeval = {(r["article_id"], r["summary_id"]): sum(float(r[a]) for a in ASPECTS) / 4 for r in map(json.loads, f)}
    with open(DATA / "nyu-mll-SQuALITY/data/human-eval/all-responses.jsonl", encoding="utf-8") as f:
        squality = {str(r["passage-id"]): r["questions"] for r in map(json.loads, f)}
    counts = Counter()
    for p in by_domain["summarization"]:
        counts[p.source] += 1
        winner, loser = p.id.rsplit(":", 1)[1].split(">")
        if p.source == "summeval":  # summeval:<article>:<summary>><summary>
            article = p.id.split(":")[1]
            gap = summeval[(article, winner)] - summeval[(article, loser)]
            assert gap >= SummEvalPairs.min_gap - 1e-9, p.id
        else:  # squality:<passage>:q<number>:<system>><system>
            _src, passage, q, _systems = p.id.split(":")
            rated = squality[passage][str(int(q[1:]) - 1)]
            gap = rated[winner]["overall"]["overall-rating"] - rated[loser]["overall"]["overall-rating"]
            assert gap >= SQuALITYPairs.min_gap, p.id
            assert p.chosen == rated[winner]["response"].strip()
    assert counts["summeval"] > 800 and counts["squality"] > 150
    per_article = Counter(p.id.split(":")[1] for p in by_domain["summarization"] if p.source == "summeval")
    assert max(per_article.values()) <= SummEvalPairs.cap_per_article


def test_routing_tables(built) -> None:
    with open(DATA / "tatsu-lab-alpaca_eval/instructions.jsonl", encoding="utf-8") as f:
        subsets = {str(r["id"]): r["dataset"] for r in map(json.loads, f)}
    a57 = read_routing(built / "routing/alpaca_eval_57.jsonl")
    assert len(a57) == 805
    models = set().union(*(r.scores for r in a57))
    assert len(models) == 57 and all(len(r.scores) <= 57 for r in a57)
    assert sum(len(r.scores) < 57 for r in a57) > 0  # empty cells leave a model out
    assert all(r.tags == [subsets[r.id]] for r in a57)
    assert set(subsets.values()) == {"helpful_base", "koala", "oasst", "selfinstruct", "vicuna"}

    a11 = read_routing(built / "routing/alpaca_eval_11.jsonl")
    assert len(a11) == 805 and all(r.responses and set(r.responses) == set(r.scores) for r in a11)
    assert all(r.tags == [subsets[r.id]] for r in a11)

    gsm = read_routing(built / "routing/gsm8k_2.jsonl")
    assert len(gsm) == 1319 and all(r.tags == ["gsm8k"] and len(r.scores) == 2 and r.responses for r in gsm)
    assert all(set(r.scores.values()) <= {0.0, 1.0} for r in gsm)
    gpt4 = sum(r.scores["gpt-4-1106-preview"] for r in gsm) / len(gsm)
    assert gpt4 == pytest.approx(0.857, abs=0.002)  # matches SOURCE.md

    he = read_routing(built / "routing/humaneval.jsonl")
    assert len(he) == 164 and all(len(r.scores) == 35 and set(r.responses) == set(r.scores) for r in he)
    assert sum(r.scores["gpt4"] for r in he) / 164 == pytest.approx(0.860, abs=0.005)

    cac = read_routing(built / "routing/can_ai_code.jsonl")
    assert len(cac) == 34 and all(len(r.tags) == 2 and all(0 <= s <= 1 for s in r.scores.values()) for r in cac)


def test_a_query_has_the_same_split_in_pairs_and_routing_tables(built, by_domain) -> None:
    """Single-turn prompts are the routing queries' text; where that is the group key, split_of agrees."""
    pair_split = {p.prompt: split_of(p.prompt) for d in ("chat", "math", "code") for p in by_domain[d]
                  if p.group is None}
    for table in ("alpaca_eval_57", "alpaca_eval_11", "gsm8k_2", "humaneval"):  # can-ai-code: task groups
        queries = [r.query for r in read_routing(built / "routing" / f"{table}.jsonl")]
        matched = [q for q in queries if q in pair_split]
        assert len(matched) > 0.3 * len(queries), table
        assert all(pair_split[q] == split_of(q) for q in matched)


def test_streamed_split_files_are_the_in_memory_text_split_byte_for_byte(built) -> None:
    """The build streams pairs to their files and merges groups on affix digests; the files are
    exactly what the whole list of pairs, split by the text rule, gave before it streamed."""
    pairs = [p for d in DEFAULT_DOMAINS for cls in PAIR_BUILDERS[d] for p in make_builder(cls, 0).build(DATA)]
    root = _text_rule([p.group_key() for p in pairs], [render_prompt(p.prompt) for p in pairs])
    assert any(k != r for k, r in root.items())  # the real data has groups merged by a shared affix
    lines: dict[str, list[str]] = {s: [] for s in SPLITS}
    for p in pairs:
        lines[split_of(root[p.group_key()])].append(to_json_line(p))
    for s in SPLITS:
        assert (built / "prefs" / f"{s}.jsonl").read_bytes() == "".join(lines[s]).encode("utf-8"), s


def test_rebuilding_one_domain_gives_the_same_pairs(built, by_domain, tmp_path) -> None:
    report = build_dataset(DATA, tmp_path, domains="summarization", routing=False)
    again = [p for s in SPLITS for p in read_pairs(tmp_path / "prefs" / f"{s}.jsonl")]
    assert sorted(p.id for p in again) == sorted(p.id for p in by_domain["summarization"])
    assert report.counts()["summarization"]["total"] == len(again)
    assert not (tmp_path / "routing").exists()


def test_stories_domain_builds_on_request(tmp_path) -> None:
    report = build_dataset(DATA, tmp_path, domains=["stories"], routing=False)
    counts = report.counts()
    assert set(counts) == {"stories"} and all(counts["stories"][s] > 0 for s in SPLITS)
    assert counts["stories"]["total"] > 800


# ---------------------------------------------------------------- memory: the pairs stream

ANSWER_CHARS = 10_000
PAIRS_EACH = 50


@dataclasses.dataclass
class _Synthetic(PairBuilder):
    """PAIRS_EACH pairs with a prompt (and so a group) of their own and long answers."""

    name: ClassVar[str] = "synthetic"
    domain: ClassVar[str] = "synthetic"
    origin_url: ClassVar[str] = "https://example.org/synthetic"
    required_files: ClassVar[tuple[str, ...]] = ()
    ids: ClassVar[str] = "{name}:{j}"

    def build(self, source_dir: Path) -> list[PreferencePair]:
        return [PreferencePair(id=self.ids.format(name=self.name, j=j), prompt=f"question {self.name}-{j}",
                               chosen=f"{j}" + "c" * ANSWER_CHARS, rejected=f"{j}" + "r" * (ANSWER_CHARS // 2),
                               domain="synthetic", source=self.name) for j in range(PAIRS_EACH)]


def _synthetic_builders(monkeypatch, count: int, **attrs) -> None:
    classes = tuple(type(f"Synthetic{i}", (_Synthetic,), {"name": f"synthetic{i}", **attrs}) for i in range(count))
    monkeypatch.setattr(build_module, "PAIR_BUILDERS", {"synthetic": classes})


def _build_peak(monkeypatch, tmp_path: Path, count: int) -> int:
    """Peak bytes allocated while building `count` synthetic builders' pairs."""
    _synthetic_builders(monkeypatch, count)
    tracemalloc.start()
    try:
        report = build_dataset(tmp_path, tmp_path / f"out{count}", domains="synthetic", routing=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.counts()["synthetic"]["total"] == count * PAIRS_EACH
    return peak


def test_build_memory_does_not_grow_with_the_pairs(monkeypatch, tmp_path) -> None:
    """One builder's pairs are in memory at a time; the build keeps only digests and counts."""
    _build_peak(monkeypatch, tmp_path, 1)  # first-use allocations (code digest, imports) out of the way
    small, large = _build_peak(monkeypatch, tmp_path, 2), _build_peak(monkeypatch, tmp_path, 20)
    added_text = 18 * PAIRS_EACH * (ANSWER_CHARS * 3 // 2)  # 13.5 MB of answers in the 18 builders more
    # Holding every pair (the build before it streamed) grew the peak by ~110% of the added text;
    # streaming keeps ~500 bytes a pair (group key, digests of its affixes, id, prompt and group),
    # ~3% here. A quarter leaves room for allocator noise both ways and still fails a held list.
    assert large - small < added_text / 4, (small, large)
    assert {s: len(read_pairs(tmp_path / "out20" / "prefs" / f"{s}.jsonl")) for s in SPLITS} == \
        {s: c for s, c in json.loads((tmp_path / "out20" / "SUMMARY.json").read_text())["pairs"]["synthetic"].items()
         if s != "total"}


def test_duplicate_ids_and_a_builder_that_changes_between_passes_fail(monkeypatch, tmp_path) -> None:
    _synthetic_builders(monkeypatch, 2, ids="same:{j}")
    with pytest.raises(DataError, match=r"50 duplicate pair ids, e\.g\. \['same:0', 'same:1', 'same:2'\]"):
        build_dataset(tmp_path, tmp_path / "dupes", domains="synthetic", routing=False)
    assert not (tmp_path / "dupes" / "prefs").exists()

    runs = Counter()

    class Flaky(_Synthetic):
        def build(self, source_dir: Path) -> list[PreferencePair]:
            runs[self.name] += 1
            return super().build(source_dir)[: PAIRS_EACH - runs[self.name]]

    monkeypatch.setattr(build_module, "PAIR_BUILDERS", {"synthetic": (Flaky,)})
    with pytest.raises(DataError, match="'synthetic' gave other pairs on its second run"):
        build_dataset(tmp_path, tmp_path / "flaky", domains="synthetic", routing=False)
    assert not list((tmp_path / "flaky" / "prefs").iterdir())  # no split file, finished or half-written


# ---------------------------------------------------------------- missing sources

def test_missing_source_names_the_file_and_the_url(tmp_path) -> None:
    partial = tmp_path / "data"
    shutil.copytree(DATA / "lm-sys-RouteLLM", partial / "lm-sys-RouteLLM")
    with pytest.raises(SourceMissingError) as info:
        build_dataset(partial, tmp_path / "out", domains="math,safety", routing=False)
    msg = str(info.value)
    assert "anthropic-hh-rlhf/harmless-base-test.jsonl.gz" in msg and "https://github.com/anthropics/hh-rlhf" in msg

    warnings: list[str] = []
    report = build_dataset(partial, tmp_path / "out", domains="math,safety", skip_missing=True, warn=warnings.append)
    assert report.counts()["math"]["total"] == 478 and report.counts()["safety"]["total"] == 0
    assert [s["builder"] for s in report.skipped][:1] == ["hh-rlhf"]
    assert "gsm8k_2" in report.routing and "humaneval" not in report.routing
    assert any("https://github.com/tatsu-lab/alpaca_eval" in w for w in warnings)
    assert json.loads((tmp_path / "out/SUMMARY.json").read_text())["skipped"][0]["builder"] == "hh-rlhf"


# ---------------------------------------------------------------- CLI

def test_cli_build_help_has_examples() -> None:
    result = runner.invoke(app, ["data", "build", "--help"])
    assert result.exit_code == 0
    assert "--source" in result.output and "--skip-missing" in result.output and "Examples" in result.output
    for cmd in ("validate", "stats", "sources"):
        sub = runner.invoke(app, ["data", cmd, "--help"])
        assert sub.exit_code == 0 and "Examples" in sub.output


def test_cli_validate_bad_file_exits_2_with_file_and_line(tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    good = {"id": "a", "prompt": "p", "chosen": "c", "rejected": "r", "domain": "chat"}
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "b", "chosen": None}) + "\n{oops\n")
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:2 field 'chosen':" in _flat(result.output)

    result = runner.invoke(app, ["data", "validate", str(path), "--skip-bad", "--json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["rows"], report["skipped"], report["kind"]) == (1, 2, "pairs")


def test_cli_build_missing_source_exits_2(tmp_path) -> None:
    partial = tmp_path / "data"
    shutil.copytree(DATA / "lm-sys-RouteLLM", partial / "lm-sys-RouteLLM")
    result = runner.invoke(app, ["data", "build", "--source", str(partial), "--out", str(tmp_path / "out"),
                                 "--domains", "safety"])
    assert result.exit_code == 2
    assert "harmless-base-test.jsonl.gz" in _flat(result.output) and "github.com/anthropics/hh-rlhf" in result.output
    ok = runner.invoke(app, ["data", "build", "--source", str(partial), "--out", str(tmp_path / "out"),
                             "--domains", "math", "--skip-missing", "--json"])
    assert ok.exit_code == 0
    assert json.loads(ok.stdout.strip().splitlines()[-1])["pairs"]["math"]["total"] == 478


def test_cli_stats_and_validate_on_built_data(built) -> None:
    result = runner.invoke(app, ["data", "stats", str(built / "prefs/test.jsonl"), "--json"])
    assert result.exit_code == 0
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(DEFAULT_DOMAINS) <= set(stats) and 0 <= stats["all"]["longer_wins"] <= 1
    result = runner.invoke(app, ["data", "validate", str(built / "routing/gsm8k_2.jsonl"), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout.strip().splitlines()[-1])["kind"] == "routing"


def test_a_folder_built_by_other_builder_code_is_refused_not_used(built, tmp_path) -> None:
    """A data folder from an older build (say, another split rule) is never measured on silently."""
    from rewardroute.data.ensure import ensure_built
    from rewardroute.fingerprint import StaleOutputError

    assert ensure_built(built) == built  # the folder this code built is current
    old = tmp_path / "old"
    shutil.copytree(built, old)
    summary = json.loads((old / "SUMMARY.json").read_text())
    summary["builder"] = "sha256:" + "0" * 64
    summary["split"]["rule"] = "split = sha256(rendered prompt text) mod 100: < 80 train"
    (old / "SUMMARY.json").write_text(json.dumps(summary))
    before = (old / "prefs" / "train.jsonl").read_bytes()
    with pytest.raises(StaleOutputError, match=r"(?s)other data-builder code.*< 80 train.*--overwrite"):
        ensure_built(old)
    del summary["builder"]  # built before builders were recorded
    (old / "SUMMARY.json").write_text(json.dumps(summary))
    with pytest.raises(StaleOutputError, match="not recorded"):
        ensure_built(old)
    assert (old / "prefs" / "train.jsonl").read_bytes() == before  # nothing lost
