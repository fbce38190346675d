"""code: can-ai-code interview results (1,196 runs of ~600 model names on 34 coding tasks)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..schemas import PreferencePair, RoutingRecord
from .base import PairBuilder, RoutingBuilder, load_jsonl, make_pair, short_hash
from .model_names import can_ai_code_base_model, known_hub_names
from .pairing import dedupe_judged, pass_fail_pairs

ORIGIN = "https://github.com/the-crypt-keeper/can-ai-code"
UPSTREAM = ("interview yaml files junior-v2/*.yaml and senior/*.yaml; results.jsonl.gz is derived from "
            "results/**/eval_*.ndjson, see the-crypt-keeper-can-ai-code/SOURCE.md")
FOLDER = "the-crypt-keeper-can-ai-code"
FILES = (f"{FOLDER}/results.jsonl.gz", f"{FOLDER}/junior-v2", f"{FOLDER}/senior")
LANGUAGE_NAMES = {"python": "Python", "javascript": "JavaScript"}


def load_specs(folder: Path) -> dict[str, dict[str, Any]]:
    """task name -> spec (Signature/Input/Output/Fact/Description) from every yaml file in `folder`."""
    specs: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.yaml")):
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        # keys starting with "." are YAML anchors holding shared checks, not tasks
        specs.update({k: v for k, v in doc.items() if not k.startswith(".") and isinstance(v, dict)})
    return specs


def render_task(spec: dict[str, Any], language: str) -> str:
    """The task as an instruction, in the words of the spec."""
    lang = LANGUAGE_NAMES.get(language, language)
    text = f"Write a {lang} function `{spec['Signature']}` {spec['Input']} that returns {spec['Output']}"
    text = text.rstrip(".") + "."
    if spec.get("Fact"):
        text += f"\n\n{spec['Fact']}"
    if spec.get("Description"):
        text += f"\n\n(Purpose of this task: {spec['Description']})"
    return text


@dataclass
class CanAiCodeData:
    rows: list[dict[str, Any]]
    prompts: dict[str, str]   # task key "interview/language/name" -> rendered prompt
    base: dict[str, str]      # model name -> base model

    @classmethod
    def load(cls, results: Path, *interview_dirs: Path) -> CanAiCodeData:
        specs = {d.name: load_specs(d) for d in interview_dirs}
        rows = list(load_jsonl(results))
        prompts = {}
        for r in rows:
            key = task_key(r)
            spec = specs.get(r["interview"], {}).get(r["name"])
            if key not in prompts and spec is not None:
                prompts[key] = render_task(spec, r["language"])
        models = sorted({r["model"] for r in rows})
        orgs, repos = known_hub_names(models)
        return cls(rows, prompts, {m: can_ai_code_base_model(m, orgs, repos) for m in models})


def task_key(row: dict[str, Any]) -> str:
    return f"{row['interview']}/{row['language']}/{row['name']}"


def task_group(key: str) -> str:
    """Split group of a task key: the task across languages ("interview/name")."""
    interview, _language, name = key.split("/", 2)
    return f"can-ai-code:{interview}/{name}"


@dataclass
class CanAiCodePairs(PairBuilder):
    cap_per_task: int = 12
    max_answer_chars: int = 8000
    seed: int = 0

    name = "can-ai-code"
    domain = "code"
    origin_url = ORIGIN
    upstream = UPSTREAM
    required_files = FILES
    rules = ("Per task (interview, language, name; 34 tasks), the full replies (`answer`) of all runs. "
             "Runs are grouped by base model: the `model` name lower-cased, with its owner path, local "
             "`org-` prefixes and quantisation/packaging suffixes (GPTQ, AWQ, exl2 bpw, GGUF Q4_K_M, "
             "fp16, nf4, ...) stripped (605 names -> ~390 base models). Identical replies are merged "
             "(dropped when seen both passing and failing); replies longer than max_answer_chars "
             "(reasoning traces) are left out. chosen = a PASS reply, rejected = a FAIL / NO_FUNCTION "
             "/ NO_CODE reply of a disjoint set of base models. At most cap_per_task pairs per task by "
             "a seeded shuffle spread over distinct replies. Prompt = the yaml task spec rendered as "
             "`Write a <Language> function `<Signature>` <Input> that returns <Output>.` + Fact + "
             "Description. Split group: the task across languages (interview/name), since the Python and "
             "JavaScript prompts share their Fact and Description.")

    def build(self, source_dir: Path) -> list[PreferencePair]:
        results, *dirs = self.require(source_dir)
        data = CanAiCodeData.load(results, *dirs)
        self._notes = {"model_names": len(data.base), "base_models": len(set(data.base.values()))}
        by_task: dict[str, list[tuple[str, bool, str]]] = defaultdict(list)
        for r in data.rows:
            answer = r.get("answer") or ""
            if len(answer) <= self.max_answer_chars:
                by_task[task_key(r)].append((answer, r["status"] == "PASS", data.base[r["model"]]))
        pairs = []
        for key in sorted(by_task):
            if key not in data.prompts:
                continue  # a task without a spec has no prompt to show
            picked = pass_fail_pairs(dedupe_judged(by_task[key]), cap=self.cap_per_task,
                                     seed=f"{self.seed}:{self.name}:{key}")
            prompt = data.prompts[key]
            pairs += [make_pair(self.domain, self.name, key, prompt, g.text, b.text,
                                f"{g.label}#{short_hash(g.text, n=6)}", f"{b.label}#{short_hash(b.text, n=6)}",
                                group=task_group(key)) for g, b in picked]
        return pairs


@dataclass
class CanAiCodeRouting(RoutingBuilder):
    name = "can_ai_code"
    origin_url = ORIGIN
    upstream = UPSTREAM
    required_files = FILES
    rules = ("One row per task (id `interview/language/name`); scores = per base model, the fraction "
             "of its runs whose reply passed every check; tags = [interview, language]; query = the "
             "rendered task spec. No responses (a base model has several runs).")

    def build(self, source_dir: Path) -> list[RoutingRecord]:
        results, *dirs = self.require(source_dir)
        data = CanAiCodeData.load(results, *dirs)
        tally: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        tags: dict[str, list[str]] = {}
        for r in data.rows:
            key = task_key(r)
            counts = tally[key][data.base[r["model"]]]
            counts[0] += r["status"] == "PASS"
            counts[1] += 1
            tags[key] = [r["interview"], r["language"]]
        return [RoutingRecord(id=key, query=data.prompts[key], tags=tags[key],
                              scores={m: k / n for m, (k, n) in sorted(tally[key].items())})
                for key in sorted(tally) if key in data.prompts]
