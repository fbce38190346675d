"""RESULTS.md sections and the README status table, generated from the JSON results.

Each benchmark script (`benchmarks/<benchmark>.py`) renders its own section with
`markdown(result)` and may give README status rows with `status_rows(result)`; both read only
the JSON, so `python benchmarks/publish.py` regenerates every section and the table from
`benchmarks/results/*.json` without running anything. A sentence may compare two figures only
when the code computed the comparison (an interval that excludes 0); a figure without an
interval says so.

The README status table lives between `<!-- readme:status:start -->` and
`<!-- readme:status:end -->`; nothing else in the README is touched.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rewardroute.errors import ConfigError
from rewardroute.eval.folds import fmt
from rewardroute.io import write_text_atomic

STATUS_START, STATUS_END = "<!-- readme:status:start -->", "<!-- readme:status:end -->"
# README rows in this order; other benchmarks follow by name.
ORDER = ("rm_baseline", "rm_domains", "routing", "serve_load")
Row = tuple[str, str, str, str]  # what, figure, beside it, what the intervals say


def load_results(folder: Path) -> dict[str, dict[str, Any]]:
    """name -> result of every full run in `folder` (quick runs and unreadable files are left out:
    the latter are an error naming the file)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        if "_quick" in path.stem:
            continue
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(result, dict) or "benchmark" not in result:
            raise ConfigError(f"{path}: not a benchmark result (no `benchmark` field)")
        if not result.get("quick"):
            out[result.get("name") or path.stem] = result
    return out


def script_module(benchmarks_dir: Path, benchmark: str):
    """The benchmark script as a module (its `main()` is not run), or None when there is none."""
    path = benchmarks_dir / f"{benchmark}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"_bench_{benchmark}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def replace_block(text: str, start: str, end: str, body: str, *, append: bool) -> str:
    """`text` with the part between the markers `start`/`end` replaced by `body`."""
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    if not append:
        raise ConfigError(f"markers {start} ... {end} not found")
    return text.rstrip() + "\n\n" + block + "\n"


RESULTS_HEADER = ("# Benchmark results\n\nGenerated from `benchmarks/results/*.json` by `python benchmarks/publish.py` "
                  "(each benchmark also writes its own section when it finishes). Do not edit by hand.\n")


def existing_blocks(text: str) -> dict[str, str]:
    """name -> body of every `<!-- name:start -->` ... `<!-- name:end -->` section, in order."""
    return {m.group(1): m.group(2).strip("\n") for m in
            re.finditer(r"<!-- ([\w.-]+):start -->\n?(.*?)<!-- \1:end -->", text, re.S)}


def update_results_section(path: Path, name: str, markdown: str) -> None:
    """Replace the text between `<!-- name:start -->` and `<!-- name:end -->` in RESULTS.md
    (appending the section when it is new), leaving every other section alone."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    write_text_atomic(path, replace_block(text, f"<!-- {name}:start -->", f"<!-- {name}:end -->", markdown,
                                          append=True))


# -- README status rows of the reward-model benchmarks (their scripts may define `status_rows`,
# which then wins) ----------------------------------------------------------------------------

def _figure(v: Any, digits: int = 3) -> str:
    """A number (printed with "no interval"), or a dict with `mean` (and maybe `ci95`, `n`)."""
    if isinstance(v, dict):
        return fmt(v, digits)
    if isinstance(v, (int, float)):
        return f"{v:.{digits}f} (no interval)"
    return "–"


NO_CLAIM = "no difference shown (no interval)"


def rm_baseline_rows(res: dict[str, Any]) -> list[Row]:
    acc = res.get("accuracy", {})
    single, longer = acc.get("single (mixed)", {}), acc.get("longer response wins", {})
    if "average" not in single:
        return []
    return [(f"mixed `single` reward model, {res.get('split', 'test')} accuracy, average of "
             f"{len([k for k in single if k not in ('overall', 'average')])} domains",
             _figure(single["average"]), f"longer response wins {_figure(longer.get('average'))}", NO_CLAIM)]


def rm_domains_rows(res: dict[str, Any]) -> list[Row]:
    """Rows for an rm_domains result from before the group-aware split (no seeds, no intervals):
    none, since its figures are not comparable to the baselines now reported."""
    rows: list[Row] = []
    for key, part in (res.get("results") or {}).items():
        if "seeds" not in part:
            continue
        models = part.get("models") or {}
        if "single" not in models:
            continue
        others = [a for a in ("rodos", "arliss", "more") if a in models]
        heur = (part.get("longer response wins") or {}).get("average")
        rows.append((f"{' / '.join(others)} average test accuracy ({part.get('budget', {}).get('name', key)}, "
                     f"{part.get('eval_pairs')} pairs)",
                     " / ".join(_figure(models[a].get("average")) for a in others),
                     f"single {_figure(models['single'].get('average'))}, longer wins {_figure(heur)}", NO_CLAIM))
        t = (res.get("targets") or {}).get(key) or {}
        p, th = t.get("arliss_params_vs_rodos"), t.get("arliss_throughput_vs_single")
        if p and th:
            rows.append((f"arliss parameters loaded vs rodos; throughput vs single ({key})",
                         f"{p['ratio']:.1%}; {th['ratio']:.2f}x", "", "one measurement each"))
    return rows


DEFAULT_ROWS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "rm_baseline": rm_baseline_rows, "rm_domains": rm_domains_rows}


def status_table(rows: Iterable[Row], machine: str) -> str:
    lines = [f"**Measured on {machine}** (generated from `benchmarks/results/*.json` by "
             "`python benchmarks/publish.py`; details and commands in `benchmarks/RESULTS.md`):", "",
             "| what | figure | beside it | what the intervals say |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    return "\n".join(lines) + "\n"


def _ordered(results: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    rank = {b: i for i, b in enumerate(ORDER)}
    return sorted(results.items(), key=lambda kv: (rank.get(kv[1]["benchmark"], len(ORDER)), kv[0]))


def regenerate(root: Path, *, sections: bool = True, readme: bool = True,
               only: str | None = None) -> dict[str, list[str]]:
    """Rewrite RESULTS.md sections (all, or `only` one) and the README status block from the JSON
    results under `root`; returns what was written."""
    bench_dir = root / "benchmarks"
    results = load_results(bench_dir / "results")
    modules = {b: script_module(bench_dir, b) for b in {r["benchmark"] for r in results.values()}}
    done: dict[str, list[str]] = {"sections": [], "status_rows": [], "kept": []}
    rows: list[Row] = []
    md_path = bench_dir / "RESULTS.md"
    old_blocks = existing_blocks(md_path.read_text(encoding="utf-8") if md_path.exists() else "")
    blocks: dict[str, str] = {}
    for name, res in _ordered(results):
        module = modules[res["benchmark"]]
        if sections and (only is None or only == name) and module is not None and hasattr(module, "markdown"):
            if only is not None:
                update_results_section(md_path, name, module.markdown(res))
            blocks[name] = module.markdown(res)
            done["sections"].append(name)
        elif name in old_blocks:
            blocks[name] = old_blocks[name]
            done["kept"].append(name)
        make_rows = getattr(module, "status_rows", None) or DEFAULT_ROWS.get(res["benchmark"])
        if make_rows is not None:
            new = make_rows(res)
            rows += new
            done["status_rows"] += [r[0] for r in new]
    if sections and only is None:
        # The whole file is rebuilt: generated sections, plus the old text of a section whose script
        # cannot render it from its JSON (no `markdown(result)`); hand-written prose between
        # sections is not kept, since no code checks what it claims.
        blocks.update({k: v for k, v in old_blocks.items() if k not in blocks and k not in results})
        done["kept"] += [k for k in old_blocks if k not in results]
        write_text_atomic(md_path, RESULTS_HEADER + "".join(
            f"\n<!-- {k}:start -->\n{v.rstrip()}\n<!-- {k}:end -->\n" for k, v in blocks.items()))
    if readme and rows:
        cpus = sorted({str(r.get("machine", {}).get("cpus")) for r in results.values() if r.get("machine")})
        path = root / "README.md"
        text = path.read_text(encoding="utf-8")
        table = status_table(rows, f"{'/'.join(cpus)} CPUs" if cpus else "this machine")
        write_text_atomic(path, replace_block(text, STATUS_START, STATUS_END, table, append=False))
    return done
