"""stories (a sixth domain, not built by default): HANNA story generation with human ratings."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..schemas import PreferencePair
from .base import PairBuilder, load_jsonl, make_pair
from .pairing import Rated, rated_pairs

ASPECTS = ("relevance", "coherence", "empathy", "surprise", "engagement", "complexity")


@dataclass
class HannaPairs(PairBuilder):
    min_gap: float = 1.0
    cap_per_prompt: int = 10
    seed: int = 0

    name = "hanna"
    domain = "stories"
    origin_url = "https://github.com/maiush/PPairS"
    upstream = "file data/hanna.jsonl at commit a123f7f (gzip-compressed here); data from dig-team/hanna-benchmark-asg"
    required_files = ("maiush-PPairS/data/hanna.jsonl.gz",)
    rules = ("Per writing prompt, every two of its 11 stories (10 generators + the human one); score = "
             "the mean of the 6 rated aspects (1-5, mean of 3 raters). chosen = the higher score; ties "
             "and gaps < min_gap dropped, identical texts skipped; at most cap_per_prompt pairs per "
             "prompt by a seeded shuffle spread over stories. Prompt = the instruction to write a story "
             "for the writing prompt.")

    def build(self, source_dir: Path) -> list[PreferencePair]:
        (path,) = self.require(source_dir)
        groups: dict[str, list[dict]] = defaultdict(list)
        for row in load_jsonl(path):
            groups[row["prompt_id"]].append(row)
        pairs = []
        for pid, rows in groups.items():
            answers = [Rated(r["story_id"], r["story"], sum(float(r[a]) for a in ASPECTS) / len(ASPECTS))
                       for r in rows]
            picked = rated_pairs(answers, min_gap=self.min_gap, cap=self.cap_per_prompt,
                                 seed=f"{self.seed}:{self.name}:{pid}")
            prompt = f"Write a short story for this writing prompt:\n\n{rows[0]['prompt'].strip()}"
            pairs += [make_pair(self.domain, self.name, pid, prompt, a.text.strip(), b.text.strip(), a.key, b.key)
                      for a, b in picked]
        return pairs
