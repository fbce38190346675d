"""Baselines a sceptic would run, fitted on the training split only.

A reward model has learned something only where it beats the best of these:

- `longer_wins`: the longer response (in characters) wins; nothing is fitted.
- `length_rule`: per domain, the longer or the shorter response wins, whichever wins more often
  on the training pairs of that domain (longer wins only ~45% of safety and code pairs).
- `surface_logreg`: per domain, an L2 logistic regression on the difference of surface features of
  the two responses (lengths, lines, list items, code fences, digits, answer markers such as
  `####`, apologies, word overlap with the prompt). Numpy only.

Each baseline gives a per-pair correctness (1, 0.5 on a tie, 0), like a reward model, so the same
accuracy and bootstrap code applies to both. A domain not seen in training falls back to the rule
or regression fitted on all training pairs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from ..data.schemas import PreferencePair, render_prompt
from ..errors import ConfigError

BASELINES = ("longer_wins", "length_rule", "surface_logreg")
POOLED = "*"  # the fallback fitted on every training pair

_WORD = re.compile(r"\w+")
_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+", re.M)
_APOLOGY = re.compile(r"\b(?:sorry|apologi[sz]e|i can(?:no|')t|i won't|i am not able|i'm not able|as an ai)\b", re.I)
_ANSWER_MARK = re.compile(r"####|\\boxed|the answer is|final answer", re.I)

FEATURES = ("log_chars", "log_words", "lines", "list_items", "code_fences", "digit_share", "answer_marker",
            "apology", "question_marks", "prompt_overlap", "mean_word_len")


class BaselineConfig(BaseModel):
    """Settings of the fitted baselines."""

    l2: float = Field(default=1.0, ge=0)        # ridge penalty on the standardised weights
    iterations: int = Field(default=50, ge=1)   # Newton steps (converges in ~10)
    min_domain_pairs: int = Field(default=20, ge=1)  # fewer training pairs: use the pooled fit


def response_features(prompt_words: set[str], text: str) -> list[float]:
    """The surface features of one response, in FEATURES order."""
    words = _WORD.findall(text.lower())
    n = max(1, len(text))
    overlap = len(prompt_words & set(words)) / max(1, len(set(words)))
    return [
        float(np.log1p(len(text))), float(np.log1p(len(words))), float(np.log1p(text.count("\n") + 1)),
        float(len(_LIST_ITEM.findall(text))), float(text.count("```")), sum(c.isdigit() for c in text) / n,
        float(bool(_ANSWER_MARK.search(text))), float(bool(_APOLOGY.search(text))), float(text.count("?")),
        overlap, (sum(len(w) for w in words) / len(words)) if words else 0.0,
    ]


def pair_features(pairs: Sequence[PreferencePair]) -> tuple[np.ndarray, np.ndarray]:
    """(features of chosen, features of rejected), each [N, len(FEATURES)]."""
    chosen, rejected = [], []
    for p in pairs:
        words = set(_WORD.findall(render_prompt(p.prompt).lower()))
        chosen.append(response_features(words, p.chosen))
        rejected.append(response_features(words, p.rejected))
    shape = (len(pairs), len(FEATURES))
    return np.asarray(chosen, dtype=np.float64).reshape(shape), np.asarray(rejected, dtype=np.float64).reshape(shape)


def graded(score_chosen: np.ndarray, score_rejected: np.ndarray) -> np.ndarray:
    """1 where chosen scores higher, 0.5 on a tie, 0 otherwise."""
    return np.where(score_chosen > score_rejected, 1.0, np.where(score_chosen == score_rejected, 0.5, 0.0))


def margin_graded(margins: np.ndarray) -> np.ndarray:
    """`graded` of a margin (score of chosen minus score of rejected) against 0."""
    m = np.asarray(margins, dtype=np.float64)
    return graded(m, np.zeros_like(m))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iterations: int) -> np.ndarray:
    """Weights of an L2 logistic regression without intercept, by Newton's method."""
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def longer_wins_correct(pairs: Sequence[PreferencePair]) -> np.ndarray:
    """Per-pair correctness of "the longer response wins" (needs no training data)."""
    return graded(np.array([len(p.chosen) for p in pairs], dtype=np.float64),
                   np.array([len(p.rejected) for p in pairs], dtype=np.float64))


@dataclass
class LogReg:
    """A pairwise logistic regression: P(a beats b) = sigmoid(w . (f(a) - f(b)) / scale)."""

    weights: np.ndarray
    scale: np.ndarray  # per-feature standard deviation of the training differences

    @classmethod
    def fit(cls, fc: np.ndarray, fr: np.ndarray, config: BaselineConfig) -> "LogReg":
        diff = fc - fr
        scale = diff.std(axis=0)
        scale[scale == 0] = 1.0
        # both orders of every pair: a symmetric model, so no intercept and no label imbalance
        x = np.concatenate([diff, -diff]) / scale
        y = np.concatenate([np.ones(len(diff)), np.zeros(len(diff))])
        return cls(fit_logistic(x, y, config.l2, config.iterations), scale)

    def margin(self, fc: np.ndarray, fr: np.ndarray) -> np.ndarray:
        return ((fc - fr) / self.scale) @ self.weights

    def to_dict(self) -> dict[str, Any]:
        return {"weights": dict(zip(FEATURES, self.weights.round(6).tolist())),
                "scale": dict(zip(FEATURES, self.scale.round(6).tolist()))}


@dataclass
class FittedBaselines:
    """The three baselines, fitted on one training set."""

    longer_rate: dict[str, float] = field(default_factory=dict)  # domain -> share of train pairs longer wins
    logreg: dict[str, LogReg] = field(default_factory=dict)      # domain (or POOLED) -> regression
    train_pairs: dict[str, int] = field(default_factory=dict)

    def length_direction(self, domain: str) -> int:
        """+1: the longer response wins; -1: the shorter one wins (as fitted on train)."""
        rate = self.longer_rate.get(domain, self.longer_rate[POOLED])
        return 1 if rate >= 0.5 else -1

    def correct(self, pairs: Sequence[PreferencePair]) -> dict[str, np.ndarray]:
        """Baseline name -> per-pair correctness (1 / 0.5 / 0) on `pairs`."""
        lc = np.array([len(p.chosen) for p in pairs], dtype=np.float64)
        lr = np.array([len(p.rejected) for p in pairs], dtype=np.float64)
        direction = np.array([self.length_direction(p.domain) for p in pairs], dtype=np.float64)
        margin = self.surface_margin(pairs)
        return {"longer_wins": longer_wins_correct(pairs), "length_rule": graded(direction * lc, direction * lr),
                "surface_logreg": margin_graded(margin)}

    def surface_margin(self, pairs: Sequence[PreferencePair]) -> np.ndarray:
        """The surface regression's log-odds that chosen beats rejected, per pair (its domain's
        fit, else the pooled one)."""
        fc, fr = pair_features(pairs)
        margin = np.zeros(len(pairs))
        by: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(pairs):
            by[p.domain if p.domain in self.logreg else POOLED].append(i)
        for d, idx in by.items():
            margin[idx] = self.logreg[d].margin(fc[idx], fr[idx])
        return margin

    def describe(self) -> dict[str, Any]:
        """What was fitted, for --json output and benchmark records."""
        return {"train_pairs": self.train_pairs,
                "length_rule": {d: "longer" if self.length_direction(d) > 0 else "shorter"
                                for d in self.longer_rate},
                "longer_wins_on_train": {d: round(v, 4) for d, v in self.longer_rate.items()},
                "surface_logreg": {d: m.to_dict() for d, m in self.logreg.items()}}


def fit_baselines(train: Sequence[PreferencePair], config: BaselineConfig | None = None) -> FittedBaselines:
    """Fit the length rule and the surface regression per domain (and pooled) on training pairs."""
    config = config or BaselineConfig()
    if not train:
        raise ConfigError("the baselines need training pairs (none given)")
    by: dict[str, list[PreferencePair]] = defaultdict(list)
    for p in train:
        by[p.domain].append(p)
    groups = {POOLED: list(train), **{d: by[d] for d in sorted(by) if len(by[d]) >= config.min_domain_pairs}}
    fitted = FittedBaselines()
    for d, ps in groups.items():
        lc = np.array([len(p.chosen) for p in ps])
        lr = np.array([len(p.rejected) for p in ps])
        fitted.longer_rate[d] = float(graded(lc, lr).mean())
        fitted.logreg[d] = LogReg.fit(*pair_features(ps), config)
        fitted.train_pairs[d] = len(ps)
    return fitted
