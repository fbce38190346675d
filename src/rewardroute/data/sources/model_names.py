"""Base-model names for run names, so two runs of one model are never paired with each other.

Runs of one model differ by prompt template, quantisation or packaging ("TheBloke/X-GPTQ",
"X.Q4_K_M", "org-X-fp16"); their answers are near-duplicates, and a pass-vs-fail pair between
them would teach sampling noise rather than quality.
"""

from __future__ import annotations

import re

# Prompt-format suffixes of the llm-humaneval-benchmarks run names ("<model>_<FORMAT>...").
_HUMANEVAL_FORMAT = re.compile(
    r"^(?P<model>.+?)_(?:ALPACA|VICUNA|FALCON|Q_A|H2O|OPENA|SHORT|VERYSHORT|custom|final)(?:_|$)")

# Quantisation / packaging tokens, stripped from the end of a name one at a time.
_QUANT = re.compile(
    r"[-_.](?:fp16|fp32|bf16|f16|f32|fp8|int4|int8|nf4|awq|gptq|gguf|ggml|ggmlv3|exl2|hqq|hf|safetensors"
    r"|no-act-order|act-order|actorder(?:[-_](?:true|false))?"
    r"|q\d(?:_k)?(?:_(?:xs|xl|s|m|l))?|q\d_\d|iq\d_\w+"
    r"|exl2[-_]\d+(?:[._]\d+)?(?:-?bpw)?|\d+(?:[._]\d+)?-?bpw|\d+-?bits?|w\d+|g\d+|\d+g|h\d+|main)$")

# Prefixes that some local run names put before the model name ("ggml-<org>-<model>").
_PACKAGING_PREFIX = re.compile(r"^(?:ggml|gguf)-")


def strip_quant(name: str) -> str:
    """Lower-case `name` and drop quantisation/packaging suffixes ("-gptq-4bit-128g", ".q4_k_m")."""
    name = name.lower()
    while True:
        new = _QUANT.sub("", name)
        if new == name or not new:
            return name
        name = new


def humaneval_base_model(run: str) -> str:
    """`TheBloke_guanaco-65B-GPTQ_ALPACA_MEDIUM` -> `guanaco-65b`; `Claude_Plus_custom_md` -> `claude_plus`."""
    m = _HUMANEVAL_FORMAT.match(run)
    model = m.group("model") if m else run
    org, sep, rest = model.partition("_")
    # "<org>_<repo-name>" (a hub repo has a dash in its name); "Claude_Plus" is a model, not an org.
    if sep and "-" in rest:
        model = rest
    return strip_quant(model)


def can_ai_code_base_model(model: str, orgs: frozenset[str] = frozenset(),
                           repos: frozenset[str] = frozenset()) -> str:
    """`TheBloke/CodeLlama-7B-Instruct-AWQ` -> `codellama-7b-instruct`;
    `meta-llama-Meta-Llama-3-8B-Instruct-fp16` -> `meta-llama-3-8b-instruct`.

    `orgs` are the lower-cased hub organisations seen as `org/model` in the data and `repos` the
    quantisation-stripped repository names. Local run names often spell a model `org-model` or
    `org_model`; that prefix is dropped when what follows starts with a letter (`mistral-7b`
    keeps its name) and the name is not itself a repository name (`phind-codellama-34b-v2`).
    Names with an owner (`org/name`) keep their repository name: orgs such as `mistral` or
    `deepseek` are also family names there.
    """
    raw = model.strip().lower()
    owner, _, name = raw.rstrip("/").rpartition("/")
    owner = owner.rsplit("/", 1)[-1]
    name = _PACKAGING_PREFIX.sub("", name.replace(":", "-"))  # ollama tags: "llama3.1:8b-instruct-q4_1"
    name = strip_quant(name)
    if not owner and name not in repos:
        for org in sorted(orgs, key=len, reverse=True):
            rest = name[len(org) + 1:]
            if name[:len(org)] == org and name[len(org):len(org) + 1] in ("-", "_") and rest[:1].isalpha():
                name = rest
                break
    return name or raw


def known_hub_names(models: list[str]) -> tuple[frozenset[str], frozenset[str]]:
    """(orgs, repository names) among `org/name` style model names, for `can_ai_code_base_model`."""
    orgs, repos = set(), set()
    for m in models:
        owner, _, name = m.strip().lower().rpartition("/")
        if owner:
            repos.add(strip_quant(name))
            if not owner.startswith("/"):  # a local path is not an org
                orgs.add(owner.rsplit("/", 1)[-1])
    return frozenset(orgs), frozenset(repos)
