"""PNG figures for routing results: cost-quality curves and ablation bars (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ..io import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, out: str | Path) -> Path:
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return out


def cost_quality_plot(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], out: str | Path, *,
                      points: Mapping[str, tuple[float, float]] | None = None,
                      references: Mapping[str, float] | None = None, xlabel: str = "cost per query",
                      ylabel: str = "mean score", title: str = "cost-quality", max_point_labels: int = 8) -> Path:
    """Lines for swept policies (`curves`: name -> (x, y)); the single models as markers
    (`points`: name -> (x, y)), named in the legend when there are few of them and otherwise one
    legend entry; `references` (e.g. best single, oracle) as labelled horizontal lines, so that
    no label sits on another."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    for name, (x, y) in curves.items():
        order = sorted(range(len(x)), key=lambda i: x[i])
        ax.plot([x[i] for i in order], [y[i] for i in order], marker=".", markersize=3, label=name)
    pts = dict(points or {})
    if len(pts) <= max_point_labels:
        for name, (x, y) in pts.items():
            ax.scatter([x], [y], s=28, zorder=3, label=name)
    elif pts:
        ax.scatter([x for x, _ in pts.values()], [y for _, y in pts.values()], s=14, color="grey", alpha=0.6,
                   zorder=3, label=f"single models ({len(pts)})")
    styles = iter(["--", ":", "-."])
    for name, value in (references or {}).items():
        if value is not None:
            ax.axhline(value, color="black", lw=0.9, ls=next(styles, "--"), label=f"{name} ({value:.3f})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if curves or pts or references:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, out)


def bar_plot(values: Mapping[str, float], out: str | Path, *, errors: Mapping[str, float] | None = None,
             ylabel: str = "", title: str = "", reference: float | None = None) -> Path:
    """One bar per setting, with optional error bars and a horizontal reference line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    names = list(values)
    ax.bar(names, [values[n] for n in names], yerr=[(errors or {}).get(n, 0.0) for n in names], capsize=4,
           color="#4C72B0")
    if reference is not None:
        ax.axhline(reference, color="gray", linestyle="--", linewidth=1, label=f"reference ({reference:g})")
        ax.legend(fontsize=8)
    if len(names) > 5:
        ax.tick_params(axis="x", labelrotation=30)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out)
