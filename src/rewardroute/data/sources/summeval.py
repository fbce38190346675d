"""summarization: SummEval (100 CNN/DailyMail articles x 16 system summaries, expert ratings)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..schemas import PreferencePair
from .base import PairBuilder, load_jsonl, make_pair
from .pairing import Rated, rated_pairs

ASPECTS = ("coherence", "fluency", "consistency", "relevance")


def summarize_prompt(article: str) -> str:
    # The instruction comes last: long prompts are truncated from the front.
    return f"Article:\n{article.strip()}\n\nSummarize the article above in a few sentences."


@dataclass
class SummEvalPairs(PairBuilder):
    min_gap: float = 1.0
    cap_per_article: int = 10
    seed: int = 0

    name = "summeval"
    domain = "summarization"
    origin_url = "https://github.com/maiush/PPairS"
    upstream = "file data/summeval.jsonl at commit a123f7f (gzip-compressed here); data from Yale-LILY/SummEval"
    required_files = ("maiush-PPairS/data/summeval.jsonl.gz",)
    rules = ("Per article, every two of its 16 summaries; score = the mean of the 4 expert aspect "
             "ratings (coherence, fluency, consistency, relevance; 1-5). chosen = the higher score; "
             "ties and gaps < min_gap dropped (1.0 on the 1-5 scale: about one rating step, so the "
             "order is not annotator noise), identical texts skipped. At most cap_per_article pairs "
             "per article by a seeded shuffle spread over summaries. Prompt = the article followed by "
             "the instruction to summarize it.")

    def build(self, source_dir: Path) -> list[PreferencePair]:
        (path,) = self.require(source_dir)
        articles: dict[str, list[dict]] = defaultdict(list)
        for row in load_jsonl(path):
            articles[row["article_id"]].append(row)
        pairs = []
        for aid, rows in articles.items():
            answers = [Rated(r["summary_id"], r["summary"], sum(float(r[a]) for a in ASPECTS) / len(ASPECTS))
                       for r in rows]
            picked = rated_pairs(answers, min_gap=self.min_gap, cap=self.cap_per_article,
                                 seed=f"{self.seed}:{self.name}:{aid}")
            prompt = summarize_prompt(rows[0]["article"])
            pairs += [make_pair(self.domain, self.name, aid, prompt, a.text.strip(), b.text.strip(), a.key, b.key)
                      for a, b in picked]
        return pairs
