"""Plumbing shared by the scripts in `benchmarks/`: results files, memory, data location."""

from __future__ import annotations

import hashlib
import json
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch

from rewardroute.io import write_json_atomic


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def results_dir() -> Path:
    d = repo_root() / "benchmarks" / "results"
    d.mkdir(parents=True, exist_ok=True)
    return d


def update_results_section(name: str, markdown: str, path: str | Path | None = None) -> Path:
    """Replace the text between `<!-- name:start -->` and `<!-- name:end -->` in RESULTS.md
    (appending the section when it is new), leaving every other section alone."""
    from .results_docs import update_results_section as update

    path = Path(path) if path else repo_root() / "benchmarks" / "RESULTS.md"
    update(path, name, markdown)
    return path


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    import os
    return {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(), "platform": platform.platform(),
            "date": time.strftime("%Y-%m-%d")}


def code_digest(script: Path) -> str:
    """rewardroute's version, a hash of its source and of the benchmark `script`: a cached result
    is never reused after the code that made it changed."""
    import rewardroute

    h = hashlib.sha256(rewardroute.__version__.encode())
    for path in sorted(Path(rewardroute.__file__).parent.rglob("*.py")) + [Path(script).resolve()]:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def prefs_digest(folder: Path) -> str:
    """sha256 of a built data folder's pair files (train, valid, test): a cached result is never
    reused on other data."""
    h = hashlib.sha256()
    for name in ("train", "valid", "test"):
        h.update((Path(folder) / "prefs" / f"{name}.jsonl").read_bytes())
    return h.hexdigest()[:16]


def command_line() -> str:
    return " ".join(["python", *sys.argv])


def save_json(name: str, obj: Any) -> Path:
    path = results_dir() / f"{name}.json"
    write_json_atomic(path, obj)
    return path


def publish(name: str, result: dict[str, Any], markdown: str | None) -> None:
    """A benchmark's ending: the JSON under results/, its RESULTS.md section and the README
    status table regenerated from every JSON result (when `markdown` is given: quick runs pass
    None), and the JSON on stdout."""
    save_json(name, result)
    if markdown is not None:
        from .results_docs import regenerate

        update_results_section(name, markdown)
        regenerate(repo_root(), sections=False)
    emit(result)


def emit(obj: Any) -> None:
    """The one JSON object a benchmark prints on stdout."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def add_run_args(ap, name: str) -> None:
    """The options every training benchmark shares: sampling seed, bootstrap size, the cache of
    finished runs, the smoke mode and the results name."""
    ap.add_argument("--sample-seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--work", type=Path, default=Path("runs") / name, help="cache of finished runs")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=name)


def save_figure(fig, path: Path) -> Path:
    """A matplotlib figure as a PNG, closed afterwards."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def interval_text(d: dict[str, Any]) -> str:
    """An estimate with its 95% interval: `0.615 [0.579, 0.651]`."""
    return f"{d['estimate']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"


def difference_text(d: dict[str, Any]) -> str:
    """A signed difference with its 95% interval: `+0.070 [+0.029, +0.111]`."""
    return f"{d['estimate']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
