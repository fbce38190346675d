"""`rodos`: a domain router in front of one `single` reward model per domain, all loaded.

Each pair goes, by its prompt, to the reward model of the domain the router picks (or, with
`soft`, every domain model scores it and the rewards are averaged with the router's
probabilities). The router is the shared `ExpertRouter` on a frozen backbone: its prompt
embeddings are computed once and only a linear head trains (seconds).

Checkpoint layout: `model.safetensors` holds the router head; `experts/<domain>/` is a complete
`single` checkpoint per domain (each loads and evaluates on its own); `routing_prompts.jsonl`
keeps a sample of routing prompts per domain for `add-domain`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from ..data.sampling import cap_pairs
from ..data.schemas import PreferencePair
from ..errors import CheckpointError, ConfigError
from ..router import ExpertRouter, RouterConfig, fit_router, load_router, one_hot, save_router
from .base import RewardModelConfig
from .checkpoint import load_model, save_model
from .domain_growth import extend_router, new_domain_pairs
from .pairwise_fit import fit_pairwise
from .routed import (KeptPrompts, Parts, RoutedRewardModel, DomainRouterSettings, freeze,
                      part_name, routing_examples, routing_metric)
from .single import SingleConfig, SingleRewardModel
from ..training.seed import seeded_init


class RodosConfig(RewardModelConfig):
    arch: Literal["rodos"] = "rodos"
    head_dropout: float = 0.1
    soft: bool = False  # reward = sum over domains of p(domain | prompt) * reward of that domain's model
    # A frozen backbone: the router is its head, trained on cached prompt embeddings.
    router: DomainRouterSettings = Field(default_factory=lambda: DomainRouterSettings(max_length=128, adapter_epochs=0))


class RodosRewardModel(RoutedRewardModel):
    arch = "rodos"
    config_class = RodosConfig

    def __init__(self, config: RodosConfig, router: ExpertRouter):
        super().__init__(config)
        self.router = router  # frozen backbone; the head is the part saved in model.safetensors
        self.experts = nn.ModuleList()  # one SingleRewardModel per config.domains, filled by fit or load
        self.kept = KeptPrompts()

    @classmethod
    def build(cls, config: RodosConfig, *, pretrained: bool = True,
              local_dir: str | Path | None = None) -> "RodosRewardModel":
        if not config.domains:
            raise ConfigError("rodos needs its domains (config.domains); `rm train` takes them from the data")
        return cls(config, ExpertRouter.build(router_config(config), pretrained=pretrained))

    # -- routing and scoring ---------------------------------------------------------------
    def route_probs(self, texts: Sequence[str], batch_size: int) -> torch.Tensor:
        return self.router.probs(list(texts), batch_size=batch_size)

    def score_rows(self, texts, responses, experts, weights) -> torch.Tensor:
        self._check_ready()
        out = torch.zeros(len(texts))
        if self.config.soft:
            # each domain model scores the rows it has weight on (all of them under the router,
            # one per row under oracle routing); the weights mix the rewards
            for k, model in enumerate(self.experts):
                idx = (weights[:, k] > 0).nonzero(as_tuple=True)[0].tolist()
                if idx:
                    r = model([texts[i] for i in idx], [responses[i] for i in idx]).rewards.float().cpu()
                    out[idx] += weights[idx, k].float().cpu() * r
            return out
        for d in dict.fromkeys(experts):
            idx = [i for i, e in enumerate(experts) if e == d]
            model = self.experts[self.config.domains.index(d)]
            out[idx] = model([texts[i] for i in idx], [responses[i] for i in idx]).rewards.float().cpu()
        return out

    def _check_ready(self) -> None:
        if len(self.experts) != len(self.config.domains):
            raise ConfigError("this rodos model has no trained domain models yet: train it (fit) or load one")

    # -- training (RoutedRewardModel.fit calls these) ----------------------------------------
    def fit_router(self, texts, labels, v_texts, v_labels, args, parts: Parts) -> dict[str, Any]:
        """The router head on cached prompt embeddings (the backbone stays frozen)."""
        self.experts = nn.ModuleList()  # the domain models follow, in config.domains order
        done = parts.done("router")
        if done is not None:
            self.router = load_router(done, backbone=self.router.backbone)
            return {"part": "router", "resumed": True}
        result = fit_router(self.router, texts, one_hot(labels, self.config.domains),
                            self.config.router.training(args, "head"),
                            valid_texts=v_texts or None,
                            valid_targets=one_hot(v_labels, self.config.domains) if v_texts else None,
                            metric=routing_metric(one_hot(v_labels, self.config.domains)) if v_texts else None,
                            resume_dir=parts.loop_dir("router"), desc="rodos router")
        parts.save("router", lambda path: save_router(self.router, path))
        return {"part": "router", "valid_accuracy": result.best_metric, "best_epoch": result.best_epoch,
                "prompts": len(texts), "seconds": result.seconds}

    def fit_expert(self, domain: str, train, valid, args, parts: Parts) -> dict[str, Any]:
        model, record = self._fit_expert(domain, train, valid, args, parts)
        self.experts.append(model)
        return record

    def _fit_expert(self, domain: str, train, valid, args, parts: Parts) -> tuple[SingleRewardModel, dict]:
        name = part_name("expert", domain)
        done = parts.done(name)
        if done is not None:
            model = load_model(done, expect_arch="single")
            freeze(model)
            return model, {"part": name, "resumed": True}
        cfg = SingleConfig(backbone=self.config.backbone, domains=[domain], head_dropout=self.config.head_dropout)
        seeded_init(args.seed, name)  # the head starts the same whether or not other parts ran first
        model = SingleRewardModel.build(cfg)
        result = fit_pairwise(model, train, valid, args, resume_dir=parts.loop_dir(name), desc=f"rodos {domain}")
        parts.save(name, lambda path: save_model(model, path))
        freeze(model)
        model.eval()
        return model, {"part": name, "valid_accuracy": result.best_metric, "best_epoch": result.best_epoch,
                       "pairs": len(train), "seconds": result.seconds}

    # -- adding a domain -------------------------------------------------------------------
    def add_domain(self, domain: str, train: Sequence[PreferencePair], valid: Sequence[PreferencePair], args,
                   *, resume_dir: Path | None = None) -> dict[str, Any]:
        """Train a `single` model for `domain` and extend the router; the existing domain
        models (and the router's existing outputs) stay exactly as they were."""
        self._check_ready()
        pairs, v_pairs = new_domain_pairs(self, domain, train, valid)
        pairs = cap_pairs(pairs, args.max_pairs, args.seed)
        parts = self.parts_for(resume_dir, f"add-domain:{domain}", args, pairs, v_pairs)
        model, record = self._fit_expert(domain, pairs, v_pairs, self.expert_args(args), parts)
        texts, _ = routing_examples(pairs)
        v_texts, _ = routing_examples(v_pairs)
        router_record = extend_router(self.router, domain, self.kept, texts, v_texts,
                                      self.config.router, args, resume_dir=parts.loop_dir("router+"))
        self.experts.append(model)
        self.config = self.config.model_copy(update={"domains": [*self.config.domains, domain]})
        return {"expert": record, "router": router_record}

    # -- saving ----------------------------------------------------------------------------
    # model.safetensors holds the router's head only: its backbone is the pretrained one and each
    # domain model is a complete `single` checkpoint under experts/ (saved once, not twice).
    backbone_in_checkpoint = False

    def persisted_keys(self) -> list[str]:
        return [k for k in self.state_dict() if k.startswith("router.head.")]

    def save_parts(self, folder: Path) -> None:
        self._check_ready()
        for d, model in zip(self.config.domains, self.experts):
            save_model(model, folder / "experts" / expert_folder(d))
        self.kept.save(folder)

    def load_parts(self, folder: Path) -> None:
        self.experts = nn.ModuleList()
        for d in self.config.domains:
            path = folder / "experts" / expert_folder(d)
            if not path.is_dir():
                raise CheckpointError(f"{folder}: the domain model for '{d}' is missing (expected {path})")
            model = load_model(path, expect_arch="single")
            freeze(model)
            self.experts.append(model)
        self.kept = KeptPrompts.load(folder)

    def param_report(self) -> dict[str, Any]:
        report = super().param_report()
        report["router"] = sum(p.numel() for p in self.router.parameters())
        report["per_domain_model"] = {d: sum(p.numel() for p in m.parameters())
                                      for d, m in zip(self.config.domains, self.experts)}
        return report


def set_soft_mixing(model, soft: bool) -> None:
    """Score a rodos model by its top domain's expert (False) or by every expert weighted by the
    router's probabilities (True); other architectures have no such choice."""
    if not isinstance(model, RodosRewardModel):
        raise ConfigError(f"--soft/--hard apply to rodos models; this one is '{model.arch}'")
    model.config = model.config.model_copy(update={"soft": soft})


def router_config(config: RodosConfig) -> RouterConfig:
    bb = config.backbone.model_copy(update={"max_length": config.router.max_length,
                                            "pooling": config.router.pooling})
    return RouterConfig(experts=list(config.domains), backbone=bb, finetune=False, hidden=config.router.hidden)


def expert_folder(domain: str) -> str:
    return part_name("", domain)

