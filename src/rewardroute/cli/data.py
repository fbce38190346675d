"""`rewardroute data ...`: build the standard files from the public sources, check and describe them."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..console import console, progress
from .common import cli_errors, print_json

app = typer.Typer(
    help="Build the reward-domain pairs and routing tables from the public sources; validate and describe data files.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

BUILD_EPILOG = """[bold]Examples[/]

  rewardroute data build --out data

  rewardroute data build --domains stories --out stories --no-routing

  rewardroute data build --domains human --out human --no-routing   # people's preferences; test = held-out human test

  rewardroute data build --source /path/to/datasets --out data --overwrite

  REWARDROUTE_DATA=/path/to/datasets rewardroute data build --out data --skip-missing

Writes OUT/prefs/{train,valid,test}.jsonl, OUT/routing/*.jsonl, OUT/SUMMARY.json and OUT/BUILD.md (the pairing rules)."""

VALIDATE_EPILOG = """[bold]Examples[/]

  rewardroute data validate data/prefs/train.jsonl

  rewardroute data validate data/routing/gsm8k_2.jsonl --kind routing

  rewardroute data validate my_pairs.csv --skip-bad

A bad row prints [italic]file:line field 'x': reason[/] and exits with code 2."""

STATS_EPILOG = """[bold]Examples[/]

  rewardroute data stats data/prefs/test.jsonl

  rewardroute data stats data/prefs/train.jsonl --json

"longer wins" is the accuracy of always preferring the longer answer (ties count half): the length baseline."""

SOURCES_EPILOG = """[bold]Examples[/]

  rewardroute data sources

  rewardroute data sources --source /path/to/datasets --json"""


class Kind(str, Enum):
    auto = "auto"
    pairs = "pairs"
    routing = "routing"


def _source(source: Path | None) -> Path:
    from ..data.build import default_source_dir

    return source if source is not None else default_source_dir()


@app.command(epilog=BUILD_EPILOG)
def build(
    source: Annotated[Path | None, typer.Option(
        help="Folder with the public sources. Default: $REWARDROUTE_DATA, else the datasets/ folder "
             "of the checkout rewardroute runs from.", show_default=False)] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("data"),
    domains: Annotated[str | None, typer.Option(
        help="Comma list of domains. Default: safety,math,chat,code,summarization (also: stories, human).",
        show_default=False)] = None,
    routing: Annotated[bool, typer.Option(help="Also write the routing tables.")] = True,
    skip_missing: Annotated[bool, typer.Option(
        help="Warn about a missing source and go on, instead of failing.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the capped pair sampling.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace the files of a non-empty output folder.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print SUMMARY.json to stdout.")] = False,
) -> None:
    """Turn the public sources into preference pairs (split 60/20/20 by a hash of a group key: story, task, first turn or prompt) and routing tables."""
    from ..data.build import build_dataset, parse_domains
    from ..data.sources import PAIR_BUILDERS, ROUTING_BUILDERS

    with cli_errors():
        src = _source(source)
        chosen = parse_domains(domains)
        console.print(f"sources: {src.resolve()}", highlight=False)
        steps = sum(len(PAIR_BUILDERS[d]) for d in chosen) + (len(ROUTING_BUILDERS) if routing else 0)

        def warn(msg: str) -> None:
            console.print(f"[yellow]warning:[/] {msg}", highlight=False)

        with progress(transient=True) as bar:
            task = bar.add_task("building", total=steps, status="")
            started = [0]

            def step(name: str) -> None:  # called as each builder starts: the previous ones are done
                bar.update(task, completed=started[0], status=name)
                started[0] += 1

            report = build_dataset(src, out, domains=chosen, routing=routing, skip_missing=skip_missing,
                                   seed=seed, overwrite=overwrite, on_step=step, warn=warn)
            bar.update(task, completed=steps, status="done")
        summary = report.summary()
        print_summary(summary, out)
        if as_json:
            print_json(summary)


def print_summary(summary: dict[str, Any], out: Path) -> None:
    """The pairs per domain and split, and the routing tables, as rich tables on stderr."""
    table = Table(title=f"preference pairs -> {out / 'prefs'}")
    for col in ("domain", "train", "valid", "test", "total", "longer wins (test)"):
        table.add_column(col, justify="left" if col == "domain" else "right")
    for domain, c in summary["pairs"].items():
        lw = summary["longer_wins_test"].get(domain)
        table.add_row(domain, *(str(c[s]) for s in ("train", "valid", "test", "total")),
                      "-" if lw is None else f"{lw:.3f}")
    t = summary["pairs_total"]
    table.add_row("[bold]all", *(f"[bold]{t[s]}" for s in ("train", "valid", "test", "total")), "")
    console.print(table)
    if summary["routing"]:
        rt = Table(title=f"routing tables -> {out / 'routing'}")
        for col in ("table", "rows", "models"):
            rt.add_column(col, justify="left" if col == "table" else "right")
        for name, info in summary["routing"].items():
            rt.add_row(name, str(info["rows"]), str(info["models"]))
        console.print(rt)
    for s in summary["skipped"]:
        console.print(f"[yellow]skipped[/] {s['builder']}", highlight=False)
    console.print(f"wrote {out / 'SUMMARY.json'} and {out / 'BUILD.md'}", highlight=False)


def _guess_kind(path: str) -> Kind:
    """pairs if the first readable row has `chosen`, routing if it has `query`/`scores`."""
    from ..data.readers import iter_raw

    _line, row = next(iter(iter_raw(path)), (0, None))
    if isinstance(row, dict) and "chosen" not in row and ("query" in row or "scores" in row):
        return Kind.routing
    return Kind.pairs  # also for an empty or malformed first row: the pair reader then says what is wrong


@app.command(epilog=VALIDATE_EPILOG)
def validate(
    file: Annotated[str, typer.Argument(help="A .jsonl, .jsonl.gz, .csv or .parquet file, or hf://owner/name[:split].")],
    kind: Annotated[Kind, typer.Option(help="Record type; auto looks at the first row.")] = Kind.auto,
    skip_bad: Annotated[bool, typer.Option(help="Skip bad rows and report how many, instead of failing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON to stdout.")] = False,
) -> None:
    """Read FILE with the standard readers and report the rows; the first bad row fails with file:line."""
    from collections import Counter

    from ..data.readers import ReadReport, read_pairs, read_routing

    with cli_errors():
        if kind is Kind.auto:
            kind = _guess_kind(file)
        report = ReadReport(path=str(file))
        reader = read_pairs if kind is Kind.pairs else read_routing
        rows = reader(file, skip_bad=skip_bad, report=report)
        result: dict[str, Any] = {"file": str(file), "kind": kind.value, "rows": report.kept,
                                  "skipped": report.skipped}
        if kind is Kind.pairs:
            result["domains"] = dict(sorted(Counter(p.domain for p in rows).items()))
        else:
            result["models"] = len({m for r in rows for m in r.scores})
            result["tags"] = dict(sorted(Counter(t for r in rows for t in r.tags).items()))
        console.print(f"[green]ok[/] {file}: {report.kept} rows ({kind.value})", highlight=False)
        for key in ("domains", "tags"):
            if result.get(key):
                console.print(f"  {key}: " + ", ".join(f"{k} {v}" for k, v in result[key].items()), highlight=False)
        if kind is Kind.routing:
            console.print(f"  models: {result['models']}")
        if report.skipped:
            console.print(f"[yellow]skipped {report.skipped} bad rows[/], first ones:", highlight=False)
            for err in report.errors:
                console.print(f"  {err}", highlight=False)
        if as_json:
            print_json(result)


@app.command(epilog=STATS_EPILOG)
def stats(
    file: Annotated[str, typer.Argument(help="A preference-pair file, or hf://owner/name[:split].")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON to stdout.")] = False,
) -> None:
    """Pairs per domain, mean chosen/rejected length (chars) and the "longer answer wins" accuracy."""
    from ..data.build import pair_stats
    from ..data.readers import read_pairs

    with cli_errors():
        pairs = read_pairs(file)
        result = pair_stats(pairs, with_all=True)
        table = Table(title=str(file))
        for col in ("domain", "pairs", "mean chosen chars", "mean rejected chars", "longer wins"):
            table.add_column(col, justify="left" if col == "domain" else "right")
        for domain, s in result.items():
            table.add_row(domain, str(s["pairs"]), f"{s['mean_chosen_chars']:.0f}",
                          f"{s['mean_rejected_chars']:.0f}", f"{s['longer_wins']:.3f}")
        console.print(table)
        if as_json:
            print_json(result)


@app.command(epilog=SOURCES_EPILOG)
def sources(
    source: Annotated[Path | None, typer.Option(help="Folder with the public sources (default as for build).",
                                                show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON to stdout.")] = False,
) -> None:
    """List every registered builder, its origin URL and whether its files are present."""
    from ..data.sources import PAIR_BUILDERS, ROUTING_BUILDERS

    with cli_errors():
        src = _source(source)
        entries = [(f"{d}", cls) for d, classes in PAIR_BUILDERS.items() for cls in classes]
        entries += [(f"routing/{t}", cls) for t, cls in ROUTING_BUILDERS.items()]
        rows = []
        for target, cls in entries:
            missing = [f for f in cls.required_files if not (src / f).exists()]
            rows.append({"target": target, "builder": cls.name, "origin_url": cls.origin_url,
                         "present": not missing, "missing": missing})
        table = Table(title=f"sources in {src}")
        for col in ("target", "builder", "files", "origin"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["target"], r["builder"], "[green]ok" if r["present"] else f"[red]missing {r['missing'][0]}",
                          r["origin_url"])
        console.print(table)
        if as_json:
            print_json({"source": str(src), "builders": rows})
