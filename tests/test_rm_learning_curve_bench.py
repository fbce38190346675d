"""The learning-curve benchmark in its --quick mode: each size trains on that many pairs per
domain, every model sits beside the baselines, and finished runs are reused only for the same
settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "rm_learning_curve.py"
pytestmark = pytest.mark.slow  # four tiny models trained and scored (about a minute)


def _run(built_data: Path, work: Path, *extra: str) -> tuple[dict, str]:
    cmd = [sys.executable, str(SCRIPT), "--quick", "--data", str(built_data), "--work", str(work), "--device", "cpu",
           *extra]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout + proc.stderr


def test_quick_curve_trains_each_size_beside_the_baselines(built_data, tmp_path):
    out, _ = _run(built_data, tmp_path / "work", "--archs", "single")
    runs = out["runs"]["single"]
    assert list(runs) == ["4", "12"]
    for size, rs in runs.items():
        assert all(n <= int(size) for n in rs[0]["train_by_domain"].values())
        assert sum(rs[0]["train_by_domain"].values()) == rs[0]["train_pairs"] > 0
    assert runs["12"][0]["train_pairs"] > runs["4"][0]["train_pairs"]
    cmp = out["comparison"]["by_arch"]["single"]
    assert set(cmp["models"]) == {"single @ 4", "single @ 12"} and "vs_single @ 4" in cmp["models"]["single @ 12"]
    assert set(cmp["baselines"]) == {"longer_wins", "length_rule", "surface_logreg"}
    assert out["baselines_fitted"]["train_pairs"]["*"] > runs["12"][0]["train_pairs"]  # fitted on the whole train split

    again, log = _run(built_data, tmp_path / "work", "--archs", "single", "--sizes", "4")
    assert "reusing single on 4 pairs per domain, seed 0" in log
    assert again["comparison"]["by_arch"]["single"]["models"]["single @ 4"]["accuracy"] == cmp["models"]["single @ 4"]["accuracy"]
    _, log = _run(built_data, tmp_path / "work", "--archs", "single", "--sizes", "4", "--freeze-layers", "4")
    assert "training single on 4 pairs per domain, seed 0" in log  # another setting: trained afresh


def test_readme_rows_from_the_committed_runs():
    """The main run gives a README row per size; another run (`--out`) only its largest size, so
    the status table does not repeat the main run's sizes."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_lc", SCRIPT)
    lc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lc)
    results = REPO / "benchmarks" / "results"
    main = json.loads((results / "rm_learning_curve.json").read_text())
    other = json.loads((results / "rm_learning_curve_1000.json").read_text())
    assert [r[0].split(" train pairs")[0] for r in lc.status_rows(main)] == ["`single` on 100", "`single` on 300"]
    rows = lc.status_rows(other)
    assert len(rows) == 1 and rows[0][0].startswith("`single` on 1000 ") and "(1 seed)" in rows[0][0]
    prior = json.loads((results / "rm_surface_prior.json").read_text())
    names = [r[0].split(" on ")[0] for r in lc.status_rows(prior)]  # the plain model's row is the run above's
    assert names == ["`single + prior`", "`single, prior-trained`", "`single, prior-trained + prior`"]
