"""math: GSM8K answers of GPT-4 and Mixtral with correctness (RouteLLM's evaluation data)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..schemas import PreferencePair, RoutingRecord
from .base import PairBuilder, RoutingBuilder, load_csv, make_pair

ORIGIN = "https://github.com/lm-sys/RouteLLM"
UPSTREAM = "file routellm/evals/gsm8k/gsm8k_responses.csv"
FILES = ("lm-sys-RouteLLM/gsm8k/gsm8k_responses.csv",)


def models_of(row: dict[str, str]) -> list[str]:
    """Model columns are those with a matching `<model>_response` column."""
    return sorted(k for k in row if f"{k}_response" in row)


def short_name(model: str) -> str:
    return model.rsplit("/", 1)[-1]


@dataclass
class GSM8KPairs(PairBuilder):
    name = "gsm8k"
    domain = "math"
    origin_url = ORIGIN
    upstream = UPSTREAM
    required_files = FILES
    rules = ("GSM8K test problems answered by gpt-4-1106-preview and Mixtral-8x7B-Instruct; kept where "
             "exactly one answer is correct. Prompt = the problem text; chosen = the "
             "correct answer, rejected = the wrong one. Caveat: the two models write in different "
             "styles (Mixtral ends with `#### N`) and GPT-4 is the correct one in 383 of the 478 pairs.")

    def build(self, source_dir: Path) -> list[PreferencePair]:
        (path,) = self.require(source_dir)
        pairs = []
        for i, row in enumerate(load_csv(path)):
            right = [m for m in models_of(row) if row[m] == "True"]
            wrong = [m for m in models_of(row) if row[m] == "False"]
            if len(right) != 1 or len(wrong) != 1:
                continue
            good, bad = right[0], wrong[0]
            chosen, rejected = row[f"{good}_response"].strip(), row[f"{bad}_response"].strip()
            if not chosen or not rejected:
                continue
            pairs.append(make_pair(self.domain, self.name, str(i), row["prompt"].strip(),
                                   chosen, rejected, short_name(good), short_name(bad)))
        return pairs


@dataclass
class GSM8KRouting(RoutingBuilder):
    name = "gsm8k_2"
    origin_url = ORIGIN
    upstream = UPSTREAM
    required_files = FILES
    rules = ("One row per GSM8K test problem (id = row index); scores = 1.0/0.0 correctness of "
             "each of the 2 models, responses = their full answers, tag `gsm8k`.")

    def build(self, source_dir: Path) -> list[RoutingRecord]:
        (path,) = self.require(source_dir)
        records = []
        for i, row in enumerate(load_csv(path)):
            models = models_of(row)
            records.append(RoutingRecord(
                id=f"gsm8k-{i}", query=row["prompt"].strip(), tags=["gsm8k"],
                responses={m: row[f"{m}_response"] for m in models},
                scores={m: 1.0 if row[m] == "True" else 0.0 for m in models}))
        return records
