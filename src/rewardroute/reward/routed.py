"""What RODOS and ARLISS share: a domain router in front of per-domain reward experts.

* `RoutedRewardModel`: routes every distinct prompt once, then scores rows grouped by the
  chosen expert and sorted by length (little padding, one expert per batch where possible).
* `DomainRouterSettings`: how the domain router reads prompts and is trained.
* Routing prompts kept in the checkpoint (`routing_prompts.jsonl`, a sample per domain) so
  that `add-domain` can refit the router with only the new domain's data.
* `Parts`: per-part resume state for models trained part by part.
"""

from __future__ import annotations

import json
import random
import re
import time
from abc import abstractmethod
from contextlib import contextmanager
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..backbone import Pooling
from ..data.sampling import cap_pairs
from ..data.schemas import Prompt, PreferencePair, render_prompt
from ..errors import CheckpointError, ConfigError
from ..fingerprint import guard_output, rows_sha256, settings_value
from ..io import write_jsonl_atomic
from ..runtime import barrier, is_main_process
from ..router import RouterTrainingConfig, one_hot
from ..router.router_trainer import top1_agreement
from ..training.loop import TrainResult
from .base import RewardModel, RewardOutput

KEPT_PROMPTS = "routing_prompts.jsonl"


class DomainRouterSettings(BaseModel):
    """The domain router: what it reads, its head, and how it trains.

    Training has up to two stages. The head stage fits the head on cached prompt embeddings
    (the backbone frozen): it is all rodos needs, warm-starts the arliss router, and fits the
    new output of `add-domain`. The adapter stage (arliss only) then trains the LoRA router
    adapter and the head together, reading the prompts each step.
    """

    model_config = ConfigDict(extra="forbid")
    # The router reads only the prompt, and only its last `max_length` tokens: the domain
    # shows early, and a short pass keeps routing cheap next to scoring.
    max_length: int = Field(default=64, ge=8)
    pooling: Pooling = "auto"
    # None: a linear head. A hidden layer (256) routed 3 points better on the five domains
    # (valid 0.938 against 0.905), but a domain added later must then be told apart in
    # features learnt without it (stories: 0.55 routed right against >0.8 with a linear head).
    hidden: int | None = Field(default=None, ge=1)
    head_epochs: int = Field(default=60, ge=1)
    head_lr: float = Field(default=3e-3, gt=0)
    adapter_epochs: int = Field(default=2, ge=0)
    adapter_lr: float = Field(default=2e-3, gt=0)
    batch_size: int = Field(default=32, ge=1)
    head_l2: float = Field(default=0.0, ge=0)
    keep_per_domain: int = Field(default=200, ge=0)  # routing prompts kept for add-domain

    def training(self, args, stage: str = "head", **update) -> RouterTrainingConfig:
        """The router's training settings for `stage`, with the run's seed, device and precision
        (`args`, the reward model's training settings)."""
        if stage == "head":
            epochs, lr, head_lr = self.head_epochs, self.head_lr, None
        else:
            epochs, lr, head_lr = self.adapter_epochs, self.adapter_lr, self.head_lr
        return RouterTrainingConfig(lr=lr, epochs=epochs, batch_size=self.batch_size, head_l2=self.head_l2,
                                    head_lr=head_lr, seed=args.seed, device=args.device, precision=args.precision,
                                    **update)


@contextmanager
def on_cached_embeddings(router):
    """Train only the head on embeddings computed once (fit_router's frozen path), whatever
    the router's own setting; trainable flags are the caller's business."""
    was = router.config.finetune
    router.config = router.config.model_copy(update={"finetune": False})
    try:
        yield
    finally:
        router.config = router.config.model_copy(update={"finetune": was})


def routing_metric(targets: torch.Tensor):
    """Top-1 routing accuracy; ties go to the more confident epoch (mean probability of the
    right domain, weighted 1e-3) instead of the first one, which is often undertrained."""
    top1 = top1_agreement(targets)
    want = targets.argmax(dim=-1)

    def metric(probs: torch.Tensor) -> float:
        return top1(probs) + 1e-3 * probs[torch.arange(len(want)), want].mean().item()
    return metric


# -- data helpers -----------------------------------------------------------------------------

def by_domain(pairs: Sequence[PreferencePair]) -> dict[str, list[PreferencePair]]:
    out: dict[str, list[PreferencePair]] = defaultdict(list)
    for p in pairs:
        out[p.domain].append(p)
    return dict(out)


def check_domains(domains: Sequence[str], pairs: Sequence[PreferencePair], what: str = "training") -> None:
    """Every configured domain needs pairs: an expert without data cannot be trained."""
    present = {p.domain for p in pairs}
    missing = [d for d in domains if d not in present]
    if missing:
        raise ConfigError(f"domain(s) {missing} have no {what} pairs (the {what} data has {sorted(present)}); "
                          "each domain expert needs its own pairs")
    extra = sorted(present - set(domains))
    if extra:
        raise ConfigError(f"the {what} data has domain(s) {extra} that the model does not know "
                          f"(its domains: {list(domains)})")


def routing_examples(pairs: Sequence[PreferencePair]) -> tuple[list[str], list[str]]:
    """Distinct (prompt text, domain) pairs: a prompt with several pairs counts once."""
    seen: dict[tuple[str, str], None] = {}
    for p in pairs:
        seen.setdefault((render_prompt(p.prompt), p.domain), None)
    return [t for t, _ in seen], [d for _, d in seen]


def sample_per_domain(texts: Sequence[str], labels: Sequence[str], n: int, seed: int) -> tuple[list[str], list[str]]:
    by: dict[str, list[str]] = defaultdict(list)
    for t, d in zip(texts, labels):
        by[d].append(t)
    rng = random.Random(seed)
    out_t, out_d = [], []
    for d in sorted(by):
        chosen = list(by[d])
        rng.shuffle(chosen)
        out_t += chosen[:n]
        out_d += [d] * len(chosen[:n])
    return out_t, out_d


class KeptPrompts:
    """A sample of routing prompts per domain and split, saved with the model."""

    def __init__(self, rows: list[dict] | None = None):
        self.rows = rows or []

    def add(self, texts: Sequence[str], labels: Sequence[str], split: str, n: int, seed: int) -> None:
        t, d = sample_per_domain(texts, labels, n, seed)
        self.rows += [{"text": x, "domain": y, "split": split} for x, y in zip(t, d)]

    def get(self, split: str) -> tuple[list[str], list[str]]:
        rows = [r for r in self.rows if r["split"] == split]
        return [r["text"] for r in rows], [r["domain"] for r in rows]

    def save(self, folder: Path) -> None:
        write_jsonl_atomic(folder / KEPT_PROMPTS, self.rows)

    @classmethod
    def load(cls, folder: Path) -> "KeptPrompts":
        path = folder / KEPT_PROMPTS
        if not path.exists():
            return cls()
        try:
            return cls([json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()])
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{path}: malformed JSON ({e})") from None


# -- resumable parts ----------------------------------------------------------------------------

class Parts:
    """Finished parts (the router, one expert) are saved under `<resume>/parts/<name>` so an
    interrupted run re-uses them; the part in progress resumes from `<resume>/loop/<name>`.

    `<resume>/fingerprint.json` records the job the parts belong to (model settings, training
    settings, hashes of the training and validation pairs): parts of another job are never
    reused; they stop the run with an error naming what differs."""

    def __init__(self, resume_dir: Path | None, fingerprint: dict | None = None):
        self.root = Path(resume_dir) if resume_dir is not None else None
        if self.root is not None:
            if fingerprint is None:
                raise ValueError("resumable parts need the job's fingerprint")
            if is_main_process():  # one writer of the sidecar; every rank waits for its verdict
                guard_output(self.root / "parts", fingerprint, also=[self.root / "loop"],
                             sidecar=self.root / "fingerprint.json",
                             hint=f"remove {self.root} (or train into another --out) to start afresh")
            barrier()

    def done(self, name: str) -> Path | None:
        if self.root is None:
            return None
        path = self.root / "parts" / name
        return path if path.is_dir() else None

    def loop_dir(self, name: str) -> Path | None:
        return self.root / "loop" / name if self.root is not None else None

    def save(self, name: str, write: Callable[[Path], Any]) -> None:
        """Keep a finished part: `write(path)` (an atomic save) runs on rank 0 only, and every
        rank waits for it, so that all of them can re-use it after an interruption."""
        if self.root is None:
            return
        if is_main_process():
            write(self.root / "parts" / name)
        barrier()


# -- the routed model ---------------------------------------------------------------------------

def _unique(texts: Sequence[str]) -> tuple[list[str], torch.Tensor]:
    index: dict[str, int] = {}
    inverse = [index.setdefault(t, len(index)) for t in texts]
    return list(index), torch.tensor(inverse, dtype=torch.long)


def _batches(texts: Sequence[str], responses: Sequence[str], experts: Sequence[str], size: int) -> list[list[int]]:
    """Row indices in batches of one expert each, sorted by length within the expert: no
    batch pays for another expert (a per-row adapter mix costs gathers in every layer)."""
    by: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(experts):
        by[e].append(i)
    out = []
    for rows in by.values():
        rows.sort(key=lambda i: len(texts[i]) + len(responses[i]))
        out += [rows[s:s + size] for s in range(0, len(rows), size)]
    return out


class RoutedRewardModel(RewardModel):
    """A router picks one domain expert per prompt (`config.domains` in router order)."""

    @abstractmethod
    def route_probs(self, texts: Sequence[str], batch_size: int) -> torch.Tensor:
        """[N, K] domain probabilities for prompt texts (no grad)."""

    @abstractmethod
    def score_rows(self, texts: Sequence[str], responses: Sequence[str], experts: Sequence[str],
                   weights: torch.Tensor) -> torch.Tensor:
        """Rewards [B] for one batch whose rows go to `experts`. `weights` [B, K] are the
        router's probabilities, or one-hot rows under oracle routing (for soft mixing)."""

    @abstractmethod
    def fit_router(self, texts: list[str], labels: list[str], valid_texts: list[str], valid_labels: list[str],
                   args, parts: "Parts") -> dict:
        """Train the domain router on distinct prompts (`args`: the run's training settings, for
        its seed, device and precision); returns its history record."""

    @abstractmethod
    def fit_expert(self, domain: str, train: list[PreferencePair], valid: list[PreferencePair], args,
                   parts: "Parts") -> dict:
        """Train (and attach) the domain's reward expert; returns its history record."""

    def parts_for(self, resume_dir: Path | None, job: str, args, train: Sequence[PreferencePair],
                  valid: Sequence[PreferencePair]) -> "Parts":
        """The resume state of one training job, checked against its fingerprint."""
        if resume_dir is None:
            return Parts(None)
        return Parts(resume_dir, {"job": job, "arch": self.arch, "model": settings_value(self.config),
                                  "training": settings_value(args, exclude=("checkpoint_every_s", "resume")),
                                  "train_pairs": rows_sha256(train), "valid_pairs": rows_sha256(valid)})

    def expert_args(self, args):
        """Training settings for one expert: the pair budget was already shared out."""
        return args.model_copy(update={"max_pairs": None, "eval_max_pairs": None})

    def fit(self, train: Sequence[PreferencePair], valid: Sequence[PreferencePair], args, *,
            resume_dir: Path | None = None) -> TrainResult:
        """The router, then each domain's expert on that domain's pairs, with the same pair
        budget (`max_pairs`) as one mixed model. Finished parts resume from `resume_dir`."""
        t0 = time.perf_counter()
        train = cap_pairs(train, args.max_pairs, args.seed)
        check_domains(self.config.domains, train)
        valid = [p for p in cap_pairs(valid, args.eval_max_pairs, args.seed) if p.domain in self.config.domains]
        parts = self.parts_for(resume_dir, "fit", args, train, valid)
        texts, labels = routing_examples(train)
        v_texts, v_labels = routing_examples(valid)
        keep = self.config.router.keep_per_domain
        self.kept = KeptPrompts()
        self.kept.add(texts, labels, "train", keep, args.seed)
        self.kept.add(v_texts, v_labels, "valid", keep, args.seed)
        history = [self.fit_router(texts, labels, v_texts, v_labels, args, parts)]
        part_args = self.expert_args(args)
        tr, va = by_domain(train), by_domain(valid)
        for d in self.config.domains:
            history.append(self.fit_expert(d, tr[d], va.get(d, []), part_args, parts))
        metric = None
        if valid:
            from ..eval.pairwise import evaluate_reward_model
            metric = evaluate_reward_model(self, valid, batch_size=args.eval_batch_size)["accuracy"]["overall"]
        best = max((h.get("best_epoch", 0) for h in history), default=0)
        return TrainResult(best_metric=metric, best_epoch=best, history=history, seconds=time.perf_counter() - t0)

    def pick(self, probs: torch.Tensor, domains: Sequence[str] | None) -> list[str]:
        """The expert for each row: the router's top domain, or the true one (oracle)."""
        known = self.config.domains
        if domains is None:
            return [known[i] for i in probs.argmax(dim=-1).tolist()]
        unknown = sorted({d for d in domains if d not in known})
        if unknown:
            raise ConfigError(f"domain(s) {unknown} have no expert in this {self.arch} model "
                              f"(its domains: {known}); add one with `rewardroute rm add-domain`")
        return list(domains)

    def forward(self, prompts: Sequence[str], responses: Sequence[str],
                domains: Sequence[str] | None = None) -> RewardOutput:
        uniq, inverse = _unique(list(prompts))
        probs = self.route_probs(uniq, max(1, len(uniq)))[inverse]
        experts = self.pick(probs, domains)
        rewards = self.score_rows(list(prompts), list(responses), experts, self._weights(probs, experts, domains))
        return RewardOutput(rewards=rewards, domain_probs=probs)

    def _weights(self, probs: torch.Tensor, experts: Sequence[str], domains) -> torch.Tensor:
        if domains is None:
            return probs
        return one_hot(experts, self.config.domains)

    @torch.no_grad()
    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], *, batch_size: int = 32,
              domains: Sequence[str] | None = None, return_output: bool = False):
        """Route each distinct prompt once, then score rows grouped by expert and length."""
        texts = [render_prompt(p) for p in prompts]
        if len(texts) != len(responses):
            raise ValueError(f"{len(texts)} prompts but {len(responses)} responses")
        if domains is not None and len(domains) != len(texts):
            raise ValueError(f"{len(domains)} domains for {len(texts)} rows")
        was_training = self.training
        self.eval()
        rewards = torch.empty(len(texts))
        probs = torch.empty(len(texts), len(self.config.domains))
        if texts:
            uniq, inverse = _unique(texts)
            probs = self.route_probs(uniq, batch_size)[inverse]
            experts = self.pick(probs, domains)
            weights = self._weights(probs, experts, domains)
            for idx in _batches(texts, responses, experts, batch_size):
                rewards[idx] = self.score_rows([texts[i] for i in idx], [responses[i] for i in idx],
                                               [experts[i] for i in idx], weights[idx]).float().cpu()
        self.train(was_training)
        if return_output:
            return RewardOutput(rewards=rewards, domain_probs=probs)
        return rewards


def part_name(kind: str, domain: str) -> str:
    """A file-system and module-safe name for a domain's part (`expert-chat`, `reward-chat`)."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", domain)
    return f"{kind}-{safe}" if kind else safe


def freeze(module: torch.nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)
