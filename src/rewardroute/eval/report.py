"""Accuracy tables for people: a rich table on the terminal and a markdown table for files."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from ..console import console


def _columns(rows: Mapping[str, Mapping[str, float]]) -> list[str]:
    cols: list[str] = []
    for acc in rows.values():
        for k in acc:
            if k != "overall" and k not in cols:
                cols.append(k)
    return sorted(cols) + ["overall"]


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def print_accuracy_table(rows: Mapping[str, Mapping[str, float]], title: str = "accuracy") -> None:
    """One row per model, one column per domain, then the overall accuracy."""
    cols = _columns(rows)
    table = Table(title=title)
    table.add_column("model")
    for c in cols:
        table.add_column(c, justify="right")
    for name, acc in rows.items():
        table.add_row(name, *(_fmt(acc.get(c)) for c in cols))
    console.print(table)


def markdown_table(rows: Mapping[str, Mapping[str, object]], first: str = "model",
                   columns: list[str] | None = None) -> str:
    cols = columns or _columns(rows)  # type: ignore[arg-type]
    lines = ["| " + " | ".join([first, *cols]) + " |", "|" + "---|" * (len(cols) + 1)]
    for name, acc in rows.items():
        lines.append("| " + " | ".join([name, *(_fmt(acc.get(c)) for c in cols)]) + " |")
    return "\n".join(lines) + "\n"


def comparison_rows(comparison: Mapping[str, object], *, with_margins: bool = True) -> dict[str, dict[str, str]]:
    """Rows "accuracy [low, high]" per domain and average for every model and baseline of a
    `compare_systems` result; with `with_margins`, a "- best baseline" row (and "- <reference>")
    under each model with the paired difference."""
    rows: dict[str, dict[str, str]] = {}
    for name, row in comparison["models"].items():  # type: ignore[union-attr]
        rows[name] = _cells(row["accuracy"])
        if with_margins:
            for key, label in ((k, k[3:].replace("_", " ")) for k in row if k.startswith("vs_")):
                rows[f"  {name} - {label}"] = _cells(row[key], signed=True)
    for name, acc in comparison["baselines"].items():  # type: ignore[union-attr]
        rows[name] = _cells(acc)
    return rows


def _cells(intervals: Mapping[str, Mapping[str, float]], signed: bool = False) -> dict[str, str]:
    f = "{:+.3f}" if signed else "{:.3f}"
    return {k: f"{f.format(v['estimate'])} [{f.format(v['low'])}, {f.format(v['high'])}]"
            for k, v in intervals.items() if k != "overall"}


def comparison_columns(comparison: Mapping[str, object]) -> list[str]:
    return [*sorted(comparison["bootstrap"]["groups"]), "average"]  # type: ignore[index]


def comparison_markdown(comparison: Mapping[str, object], first: str = "model / baseline") -> str:
    """The markdown form of `print_comparison`: the table, the best baselines, then every claim."""
    cols = comparison_columns(comparison)
    lines = [markdown_table(comparison_rows(comparison), first=first, columns=cols),
             f"Cells: accuracy [95% interval], resampling {comparison['bootstrap']['cluster']} within each domain "
             f"({comparison['bootstrap']['resamples']} resamples; groups per domain: "
             f"{', '.join(f'{d} {n}' for d, n in comparison['bootstrap']['groups'].items())}). "
             + ("Rows \"X - Y\" are paired differences (the same resampled groups for both). "
                if comparison["models"] else "")
             + "Best baseline per domain, picked on these pairs: "
             f"{', '.join(f'{d} {b}' for d, b in comparison['best_baseline'].items())}.", ""]
    for name, row in comparison["models"].items():  # type: ignore[union-attr]
        for key in (k for k in row if k.startswith("vs_")):
            lines.append(f"- average: {row[key]['average']['claim']}")
    return "\n".join(lines) + "\n"


def print_comparison(comparison: Mapping[str, object], title: str) -> None:
    """Accuracy with 95% clustered intervals for models and baselines, then the claims."""
    cols = comparison_columns(comparison)
    table = Table(title=title)
    table.add_column("model / baseline")
    for c in cols:
        table.add_column(c, justify="right")
    for name, cells in comparison_rows(comparison).items():
        table.add_row(name, *(cells.get(c, "-") for c in cols))
    console.print(table)
    console.print(f"best baseline per domain (picked on these pairs): {comparison['best_baseline']}")
    for name, row in comparison["models"].items():  # type: ignore[union-attr]
        for key in (k for k in row if k.startswith("vs_")):
            console.print(f"average: {row[key]['average']['claim']}")
