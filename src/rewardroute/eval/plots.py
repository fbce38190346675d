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
                  intervals: Mapping[str, Mapping[str, tuple[float, float]]] | None = None) -> Path:
    """Grouped bars: one group per domain, one bar per model/method; `intervals` (name -> column
    -> (low, high)) draws each bar's 95% interval."""
    plt = _plt()
    path = Path(path)
    cols = sorted({k for r in rows.values() for k in r if k not in ("overall", "average")}) + ["average"]
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(cols)), 4))
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
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(cols))], cols)
    ax.set_ylim(0, 1)
    ax.set_ylabel("pairwise accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
