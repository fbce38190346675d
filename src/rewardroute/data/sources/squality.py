"""summarization: SQuALITY question-focused story summaries with human ratings of 3 systems."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from ..schemas import PreferencePair
from .base import PairBuilder, load_jsonl, make_pair
from .pairing import Rated, rated_pairs


def story_prompt(story: str, question: str) -> str:
    # The question comes last: long prompts are truncated from the front.
    return (f"Story:\n{story.strip()}\n\nQuestion: {question.strip()}\n"
            "Answer the question about the story above with a paragraph-long summary.")


@dataclass
class SQuALITYPairs(PairBuilder):
    min_gap: float = 20.0
    cap_per_question: int = 10
    seed: int = 0

    name = "squality"
    domain = "summarization"
    origin_url = "https://github.com/nyu-mll/SQuALITY"
    upstream = "files data/human-eval/all-responses.jsonl and data/v1-3/txt/test.jsonl"
    required_files = ("nyu-mll-SQuALITY/data/human-eval/all-responses.jsonl",
                      "nyu-mll-SQuALITY/data/v1-3/txt/test.jsonl.gz")
    rules = ("Per story question (20 stories x 5 questions), every two of the 3 rated responses (bart, "
             "bart-dpr, human); chosen = the higher mean `overall-rating` (0-100, 3 reviewers). Ties and "
             "gaps < min_gap dropped (20 points: one fifth of the scale). The question key `k` of "
             "all-responses.jsonl (0-based) is question_number k+1 of the v1-3 test story (checked: "
             "the human response is one of that question's reference responses). Prompt = the story "
             "(about 5k words) followed by the question. With 3 responses a question has at most 3 "
             "pairs, so cap_per_question never binds. Split group: the story (all its questions share it).")

    def build(self, source_dir: Path) -> list[PreferencePair]:
        ratings_path, stories_path = self.require(source_dir)
        stories = {row["metadata"]["passage_id"]: row for row in load_jsonl(stories_path)}
        pairs = []
        for lineno, item in enumerate(load_jsonl(ratings_path), start=1):
            pid = str(item["passage-id"])
            story = stories.get(pid)
            if story is None:
                raise DataError(f"passage {pid} is not in {stories_path.name}", path=ratings_path,
                                line=lineno, field="passage-id")
            questions = {q["question_number"]: q["question_text"] for q in story["questions"]}
            for k, systems in sorted(item["questions"].items(), key=lambda kv: int(kv[0])):
                question = questions.get(int(k) + 1)
                if question is None:
                    continue
                answers = [Rated(s, r["response"], float(r["overall"]["overall-rating"]))
                           for s, r in sorted(systems.items())]
                picked = rated_pairs(answers, min_gap=self.min_gap, cap=self.cap_per_question,
                                     seed=f"{self.seed}:{self.name}:{pid}:{k}")
                prompt = story_prompt(story["document"], question)
                pairs += [make_pair(self.domain, self.name, f"{pid}:q{int(k) + 1}", prompt, a.text.strip(),
                                    b.text.strip(), a.key, b.key, group=f"{self.name}:{pid}")
                          for a, b in picked]
        return pairs
