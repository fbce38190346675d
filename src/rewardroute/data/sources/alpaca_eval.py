"""chat: AlpacaEval instructions, judge win-probabilities of 57 models, responses of 11."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from ..schemas import PreferencePair, RoutingRecord
from .base import PairBuilder, RoutingBuilder, load_csv, load_jsonl, make_pair
from .pairing import Rated, rated_pairs

ORIGIN = "https://github.com/tatsu-lab/alpaca_eval"
UPSTREAM = ("derived from results/<model>/weighted_alpaca_eval_gpt4_turbo/annotations.json; "
            "see tatsu-lab-alpaca_eval/SOURCE.md in the shared data")
OUTPUTS_11 = "tatsu-lab-alpaca_eval/outputs_11_models.jsonl.gz"
WIN_PROBS = "tatsu-lab-alpaca_eval/win_prob_vs_gpt4_1106_preview.csv"
INSTRUCTIONS = "tatsu-lab-alpaca_eval/instructions.jsonl"
WIN_PROB = "win_prob_vs_gpt4_1106_preview"


@dataclass
class AlpacaEvalPairs(PairBuilder):
    min_gap: float = 0.1
    cap_per_instruction: int = 8
    seed: int = 0

    name = "alpaca_eval"
    domain = "chat"
    origin_url = ORIGIN
    upstream = UPSTREAM
    required_files = (OUTPUTS_11,)
    rules = ("For each of the 805 instructions, every two of the 11 models' responses form a candidate "
             "pair; chosen = the one with the higher GPT-4-turbo judge win-probability against "
             "gpt4_1106_preview (whose own value is 0.5), an indirect comparison for two other models. "
             "Empty outputs and identical texts are skipped; pairs with |delta p| < min_gap are dropped. "
             "At most cap_per_instruction pairs per instruction, drawn by a seeded shuffle (seed + "
             "instruction id) spread over models: a model is used a second time only when no eligible "
             "pair of unused models is left. gpt4_1106_preview is still in about two thirds of the "
             "pairs, because most models score p close to 0 against it and their mutual gaps fall "
             "below min_gap. AlpacaEval's judge favours long answers (see the longer-wins baseline).")

    def build(self, source_dir: Path) -> list[PreferencePair]:
        (path,) = self.require(source_dir)
        pairs = []
        for row in load_jsonl(path):
            answers = [Rated(m, r.get("output") or "", float(r[WIN_PROB]))
                       for m, r in sorted(row["responses"].items()) if r.get(WIN_PROB) is not None]
            picked = rated_pairs(answers, min_gap=self.min_gap, cap=self.cap_per_instruction,
                                 seed=f"{self.seed}:{self.name}:{row['id']}")
            prompt = row["instruction"]
            pairs += [make_pair(self.domain, self.name, str(row["id"]), prompt, a.text.strip(),
                                b.text.strip(), a.key, b.key) for a, b in picked]
        return pairs


@dataclass
class AlpacaEval57Routing(RoutingBuilder):
    name = "alpaca_eval_57"
    origin_url = ORIGIN
    upstream = UPSTREAM
    required_files = (WIN_PROBS, INSTRUCTIONS)
    rules = ("One row per instruction; scores = the judge win-probability against gpt4_1106_preview "
             "of each of 57 models (an empty cell leaves that model out of the row); tag = the "
             "AlpacaEval subset (helpful_base, koala, oasst, selfinstruct, vicuna). No responses.")

    def build(self, source_dir: Path) -> list[RoutingRecord]:
        probs_path, instr_path = self.require(source_dir)
        instructions = {str(r["id"]): r for r in load_jsonl(instr_path)}
        records = []
        for row in load_csv(probs_path):
            rid = row.pop("id")
            info = instructions.get(rid)
            if info is None:
                raise DataError(f"id {rid} is not in {instr_path.name}", path=probs_path, field="id")
            records.append(RoutingRecord(
                id=rid, query=info["instruction"], tags=[info["dataset"]],
                scores={m: float(v) for m, v in row.items() if v.strip()}))
        return records


@dataclass
class AlpacaEval11Routing(RoutingBuilder):
    name = "alpaca_eval_11"
    origin_url = ORIGIN
    upstream = UPSTREAM
    required_files = (OUTPUTS_11,)
    rules = ("One row per instruction with the responses of the 11 models (as published, empty ones "
             "included) and their judge win-probabilities as scores; tag = the AlpacaEval subset.")

    def build(self, source_dir: Path) -> list[RoutingRecord]:
        (path,) = self.require(source_dir)
        return [RoutingRecord(
            id=str(row["id"]), query=row["instruction"], tags=[row["dataset"]],
            responses={m: r.get("output") or "" for m, r in row["responses"].items()},
            scores={m: float(r[WIN_PROB]) for m, r in row["responses"].items() if r.get(WIN_PROB) is not None})
            for row in load_jsonl(path)]
