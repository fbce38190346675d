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
