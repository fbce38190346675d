"""The house rules a reader relies on: no import cycles, and no module imports a layer above it
(cli -> serve/api -> zooter -> reward -> router/eval/backends -> data/backbone/training -> base)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rewardroute"
# Lower index = lower layer. The root package (version, lazy API exports) and `__main__` stand apart.
LAYERS = [
    {"errors", "io", "console", "checkpoint", "fingerprint", "validation", "config_overrides", "runtime",
     "tokenization", "sharded"},
    {"data", "backbone", "frozen_prefix", "training"},
    {"router", "eval", "backends"},
    {"reward"},
    {"zooter"},
    {"serve", "api", "integrations", "demo"},
    {"cli", "__main__"},
]


def modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def import_graph() -> dict[str, set[str]]:
    """Every rewardroute module -> the rewardroute modules it imports (also inside functions)."""
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        is_pkg = f.name == "__init__.py"
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = m.split(".")
                    base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for t in names:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m:
                    graph[m].add(t)
    return graph


def layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) == 1:
        return None  # the root package
    return next((i for i, names in enumerate(LAYERS) if parts[1] in names), -1)


def test_every_module_has_a_layer() -> None:
    assert [m for m in import_graph() if layer(m) == -1] == []


def test_no_module_imports_a_layer_above_it() -> None:
    graph = import_graph()
    up = sorted((m, t) for m, ts in graph.items() for t in ts
                if layer(m) is not None and layer(t) is not None and layer(t) > layer(m))
    assert up == []


def test_no_import_cycles() -> None:
    graph = {m: {t for t in ts if t != "rewardroute"} for m, ts in import_graph().items() if m != "rewardroute"}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


# The pipelines around reward models (train and save, add a domain to a checkpoint, score files,
# export) import the models; the models never import them back.
PIPELINES = {"reward_trainer", "add_domain", "scoring", "export"}
MODELS = {"base", "single", "more", "rodos", "arliss", "routed", "end_to_end", "moe", "domain_growth",
          "pairwise_fit"}


def test_reward_models_do_not_import_their_pipelines() -> None:
    graph = import_graph()
    for model in sorted(MODELS):
        name = f"rewardroute.reward.{model}"
        assert name in graph, name
        bad = sorted(d for d in graph[name] if d.split(".")[2:3] and d.split(".")[2] in PIPELINES
                     and d.startswith("rewardroute.reward."))
        assert not bad, f"{name} imports the pipeline module(s) {bad}"
