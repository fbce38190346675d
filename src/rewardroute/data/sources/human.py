"""human (opt-in domain): pairwise preferences that people gave, not a judge model or a checker.

Four public sources, each a `PairBuilder` of domain `human` (`source` names which):

- `qa_feedback`: long-form QA answers compared by human annotators (allenai/FineGrainedRLHF);
- `haluquestqa`: expert choice between a human and a GPT-4 answer to an ELI5 question
  (UKPLab/arxiv2024-lfqa-hallucination);
- `llmbar_natural`: instruction-following pairs labelled by the LLMBar authors (princeton-nlp/LLMBar);
- `mt_bench_human`: MT-Bench expert votes, majority-voted by the LLMBar authors (same repository).

The domain's `test` split is the held-out human test: no training, tuning or default choice may
read it (valid is for choices). All pairs of one question share its prompt text, so the
prompt-hash split keeps a question's pairs in one split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import DataError
from ..schemas import PreferencePair
from .base import PairBuilder, load_jsonl_numbered, make_pair

HUMAN_DOMAIN = "human"

# The order of the six values of a qa_feedback `preference` list (upstream tasks/qa_feedback/data/README.md):
# value 1 = the first of the two predictions is preferred, 2 = the second, 0 = no preference.
QA_COMPARED: tuple[tuple[int, int], ...] = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))


def _text(row: dict[str, Any], key: str, path: Path, line: int) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataError("expected a non-empty string", path=path, line=line, field=key)
    return value.strip()


def _choice(value: Any, allowed: tuple[int, ...], path: Path, line: int, field: str) -> int:
    if type(value) is not int or value not in allowed:  # type() check: True must not pass for 1
        raise DataError(f"expected one of {allowed}, got {value!r}", path=path, line=line, field=field)
    return value


def qa_prompt(question: str, passages: list[str]) -> str:
    # The question comes last: long prompts are truncated from the front.
    if not passages:
        return f"Answer the question in a few sentences.\nQuestion: {question}"
    context = "".join(f"{p}\n\n" for p in passages)
    return f"Passages:\n{context}Answer the question in a few sentences using the passages above.\nQuestion: {question}"


def _passages(row: dict[str, Any], path: Path, line: int) -> list[str]:
    """Each upstream passage is [title, sentence, ...]; the first sentence already starts with the title."""
    raw = row.get("passages")
    if not isinstance(raw, list) or not all(
            isinstance(p, list) and len(p) >= 2 and all(isinstance(s, str) for s in p) for p in raw):
        raise DataError("expected a list of [title, sentence, ...] string lists", path=path, line=line,
                        field="passages")
    return [" ".join(s.strip() for s in p[1:]) for p in raw]


@dataclass
class QAFeedbackPairs(PairBuilder):
    with_passages: bool = True  # put the grounding passages (the answering model's input) into the prompt

    name = "qa_feedback"
    domain = HUMAN_DOMAIN
    origin_url = "https://github.com/allenai/FineGrainedRLHF"
    upstream = ("file tasks/qa_feedback/data/dev_feedback.json at commit 5ffbe54 (one object per line and "
                "gzip-compressed here)")
    required_files = ("allenai-FineGrainedRLHF/tasks/qa_feedback/data/dev_feedback.jsonl.gz",)
    rules = ("Per ASQA question, the 6 human comparisons among its 4 sampled answers (1v2, 1v3, 1v4, 2v3, "
             "2v4, 3v4). chosen = the answer the annotator preferred; 'no preference' (0) dropped, identical "
             "texts skipped; nothing is sampled or capped. Prompt = the grounding passages, then the "
             "instruction and the question (last, as long prompts are cut from the front).")

    def build(self, source_dir: Path) -> list[PreferencePair]:
        (path,) = self.require(source_dir)
        pairs: list[PreferencePair] = []
        questions = ties = 0
        for line, row in load_jsonl_numbered(path):
            prefs = row.get("preference")
            if not isinstance(prefs, list) or len(prefs) != len(QA_COMPARED):
                raise DataError(f"expected a list of {len(QA_COMPARED)} values", path=path, line=line,
                                field="preference")
            answers = {i: _text(row, f"prediction {i}", path, line) for i in range(1, 5)}
            passages = _passages(row, path, line) if self.with_passages else []
            prompt = qa_prompt(_text(row, "question", path, line), passages)
            questions += 1
            for k, (i, j) in enumerate(QA_COMPARED):
                vote = _choice(prefs[k], (0, 1, 2), path, line, f"preference[{k}]")
                if vote == 0:
                    ties += 1
                    continue
                if answers[i] == answers[j]:
                    continue
                win, lose = (i, j) if vote == 1 else (j, i)
                pairs.append(make_pair(self.domain, self.name, f"q{line - 1:03d}", prompt, answers[win],
                                       answers[lose], f"p{win}", f"p{lose}"))
        self._notes = {"questions": questions, "no_preference_dropped": ties}
        return pairs


@dataclass
class _LLMBarFile(PairBuilder):
    """One LLMBar `dataset.json` (here one object per line): {input, output_1, output_2, label},
    label 1 or 2 = the better output. A pair repeated in the file (same input, same two outputs, in
    either order) is kept once when its labels agree and dropped when they conflict."""

    domain = HUMAN_DOMAIN
    origin_url = "https://github.com/princeton-nlp/LLMBar"

    def build(self, source_dir: Path) -> list[PreferencePair]:
        (path,) = self.require(source_dir)
        first: dict[tuple[str, frozenset[str]], tuple[int, str, str, str]] = {}
        conflicts: set[tuple[str, frozenset[str]]] = set()
        repeats = 0
        for line, row in load_jsonl_numbered(path):
            prompt = _text(row, "input", path, line)
            outs = (_text(row, "output_1", path, line), _text(row, "output_2", path, line))
            label = _choice(row.get("label"), (1, 2), path, line, "label")
            if outs[0] == outs[1]:
                continue
            chosen, rejected = outs if label == 1 else outs[::-1]
            key = (prompt, frozenset(outs))
            if key in first:
                repeats += 1
                if first[key][2] != chosen:
                    conflicts.add(key)
                continue
            first[key] = (line, prompt, chosen, rejected)
        self._notes = {"repeated_pairs_dropped": repeats, "conflicting_pairs_dropped": len(conflicts)}
        # id = the line of the pair's first occurrence in the shipped file
        return [make_pair(self.domain, self.name, str(line), prompt, chosen, rejected)
                for key, (line, prompt, chosen, rejected) in first.items() if key not in conflicts]


@dataclass
class LLMBarNaturalPairs(_LLMBarFile):
    name = "llmbar_natural"
    upstream = ("file Dataset/LLMBar/Natural/dataset.json at commit caa7bee (one object per line and "
                "gzip-compressed here)")
    required_files = ("princeton-nlp-LLMBar/Dataset/LLMBar/Natural/dataset.jsonl.gz",)
    rules = ("LLMBar Natural: one instruction, two outputs, the better one labelled by the LLMBar authors "
             "(instruction following first). chosen = the labelled output; no ties exist; identical "
             "outputs skipped. Prompt = the instruction as given.")


@dataclass
class MTBenchHumanPairs(_LLMBarFile):
    name = "mt_bench_human"
    upstream = ("file Dataset/Processed/MT-Bench/dataset.json at commit caa7bee (one object per line and "
                "gzip-compressed here); votes from lmsys/mt_bench_human_judgments")
    required_files = ("princeton-nlp-LLMBar/Dataset/Processed/MT-Bench/dataset.jsonl.gz",)
    rules = ("MT-Bench first-turn questions, two model answers, the expert human vote (majority vote when "
             "several experts judged the pair, ties removed upstream; 200 sampled by the LLMBar authors). "
             "chosen = the majority's answer; a pair repeated in the file is kept once if its labels "
             "agree, dropped if they conflict. Prompt = the question as given.")


@dataclass
class HaluQuestQAPairs(PairBuilder):
    name = "haluquestqa"
    domain = HUMAN_DOMAIN
    origin_url = "https://github.com/UKPLab/arxiv2024-lfqa-hallucination"
    upstream = ("file src/data/preference_data.csv at commit f987639 (tab-separated upstream; one object per line "
                "and gzip-compressed here)")
    required_files = ("UKPLab-arxiv2024-lfqa-hallucination/src/data/preference_data.jsonl.gz",)
    rules = ("HaluQuestQA: one pair per Reddit ELI5 question, an expert annotator's choice between a human "
             "answer and a GPT-4 answer. chosen = preferred_response; identical texts skipped. Prompt = the "
             "question as asked.")

    def build(self, source_dir: Path) -> list[PreferencePair]:
        (path,) = self.require(source_dir)
        pairs = []
        for line, row in load_jsonl_numbered(path):
            key = _text(row, "source_file", path, line).removesuffix(".txt")
            chosen, rejected = (_text(row, f, path, line) for f in ("preferred_response", "rejected_response"))
            if chosen != rejected:
                pairs.append(make_pair(self.domain, self.name, key, _text(row, "question_text", path, line),
                                       chosen, rejected))
        return pairs
