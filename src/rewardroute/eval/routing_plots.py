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
                      points: Mapping[str, tuple[float, float]] | None = None, xlabel: str = "cost per query",
                      ylabel: str = "mean score", title: str = "cost-quality") -> Path:
    """Lines for swept policies (`curves`: name -> (x, y)) and markers for fixed choices
    (`points`: name -> (x, y), e.g. single models, best_single, oracle)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, (x, y) in curves.items():
        order = sorted(range(len(x)), key=lambda i: x[i])
        ax.plot([x[i] for i in order], [y[i] for i in order], marker=".", markersize=3, label=name)
    for name, (x, y) in (points or {}).items():
        ax.scatter([x], [y], s=28, zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8, loc="lower right")
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
        ax.axhline(reference, color="gray", linestyle="--", linewidth=1)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out)
