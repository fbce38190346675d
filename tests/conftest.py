"""Shared fixtures. Models load from local packages only: the hub is never contacted."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from rewardroute.data.schemas import PreferencePair  # noqa: E402


@pytest.fixture
def toy_pairs() -> list[PreferencePair]:
    """Small, learnable pairs in two domains (unit tests only; real data is tested elsewhere)."""
    pairs = []
    for i in range(24):
        pairs.append(PreferencePair(id=f"m{i}", prompt=f"What is {i} plus {i}?", chosen=f"{i} plus {i} is {2 * i}.",
                                    rejected="No idea, sorry.", domain="math"))
        pairs.append(PreferencePair(id=f"c{i}", prompt=f"Say something kind about topic {i}.",
                                    chosen=f"Topic {i} is wonderful and worth learning about.",
                                    rejected="Go away.", domain="chat"))
    return pairs
