"""Shared fixtures. Models load from local packages only: the hub is never contacted."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# The benchmarks' shared helpers (benchmarks/benchlib: results files, stub and fault backends)
# are not part of the package; tests that use them import `benchlib` from there.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from rewardroute.data.schemas import PreferencePair  # noqa: E402
# Session-wide fixtures defined elsewhere; declared once here so every module shares one
# pair of llama.cpp servers.
from support.llama_server import llama_servers  # noqa: E402, F401
from support.toy_data import toy_pairs as make_toy_pairs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The sources ship in the repository: a missing folder is a failure, never a skip.
PUBLIC_DATA = Path(os.environ.get("REWARDROUTE_DATA") or REPO / "datasets")


@pytest.fixture(scope="session")
def built_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real public data built once per test session (`rewardroute data build`)."""
    assert PUBLIC_DATA.is_dir(), f"public sources not found at {PUBLIC_DATA}"
    from rewardroute.data.build import build_dataset
    out = tmp_path_factory.mktemp("built")
    build_dataset(PUBLIC_DATA, out)
    return out


@pytest.fixture(scope="session")
def built_stories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sixth domain (`stories`, from HANNA) built alone, for adding a domain to a model."""
    assert PUBLIC_DATA.is_dir(), f"public sources not found at {PUBLIC_DATA}"
    from rewardroute.data.build import build_dataset
    out = tmp_path_factory.mktemp("stories")
    build_dataset(PUBLIC_DATA, out, domains=["stories"], routing=False)
    return out


@pytest.fixture
def toy_pairs() -> list[PreferencePair]:
    """Small, learnable pairs in two domains (unit tests only; real data is tested elsewhere)."""
    return make_toy_pairs(24)
