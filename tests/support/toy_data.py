"""Small, learnable preference pairs in two domains, for unit tests (real data is tested elsewhere)."""

from __future__ import annotations

from rewardroute.data.schemas import PreferencePair


def toy_pairs(per_domain: int = 24) -> list[PreferencePair]:
    pairs = []
    for i in range(per_domain):
        pairs.append(PreferencePair(id=f"m{i}", prompt=f"What is {i} plus {i}?", chosen=f"{i} plus {i} is {2 * i}.",
                                    rejected="No idea, sorry.", domain="math"))
        pairs.append(PreferencePair(id=f"c{i}", prompt=f"Say something kind about topic {i}.",
                                    chosen=f"Topic {i} is wonderful and worth learning about.",
                                    rejected="Go away.", domain="chat"))
    return pairs
