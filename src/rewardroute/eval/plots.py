"""Charts as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def accuracy_bars(rows: Mapping[str, Mapping[str, float]], path: str | Path, title: str = "accuracy",
                  intervals: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
                  columns: list[str] | None = None) -> Path:
    """Grouped bars: one group per column (default: each domain, then their average), one bar per
    model/method; `intervals` (name -> column -> (low, high)) draws each bar's 95% interval."""
    plt = _plt()
    path = Path(path)
    cols = columns or sorted({k for r in rows.values() for k in r if k not in ("overall", "average")}) + ["average"]
    fig, ax = plt.subplots(figsize=(max(7, 1.5 * len(cols)), 4))
    width = 0.8 / max(1, len(rows))
    for i, (name, acc) in enumerate(rows.items()):
        xs = [j + i * width for j in range(len(cols))]
        heights = [acc.get(c, float("nan")) for c in cols]
        err = None
        if intervals and name in intervals:
            lo_hi = [intervals[name].get(c, (h, h)) for c, h in zip(cols, heights)]
            err = [[max(0.0, h - lo) for h, (lo, _) in zip(heights, lo_hi)],
                   [max(0.0, hi - h) for h, (_, hi) in zip(heights, lo_hi)]]
        ax.bar(xs, heights, width=width, label=name, yerr=err, capsize=2 if err else 0)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--", label="chance (0.5)")
    ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(cols))], cols)
    ax.set_ylim(0, 1)
    ax.set_ylabel("pairwise accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def comparison_bars(model_name: str, result: Mapping, path: str | Path, title: str) -> Path:
    """`rm eval`'s result as a chart: the model and each baseline (fitted on the training split,
    scored on the same pairs) per domain and on the domain average, with 95% intervals."""
    series = {model_name: result["intervals"], **{f"{b} (baseline)": v for b, v in (result.get("baselines") or {}).items()}}
    rows = {name: {k: v["estimate"] for k, v in acc.items() if k != "overall"} for name, acc in series.items()}
    bounds = {name: {k: (v["low"], v["high"]) for k, v in acc.items()} for name, acc in series.items()}
    return accuracy_bars(rows, path, title=title, intervals=bounds)
