"""`arliss`: one frozen backbone, a LoRA router adapter and one LoRA reward adapter per domain.

Scoring a batch takes two passes over the one backbone:
  1. the router pass: the `router` adapter reads the prompts only (their last
     `router.max_length` tokens, each distinct prompt once) and its head picks a domain;
  2. the scoring pass: every row runs with its own domain's adapter (PEFT's per-row
     `adapter_names`), so a batch that mixes domains is still one forward pass, and each
     adapter's own scalar head reads that row's pooled vector.
A pass that uses one adapter throughout (the router pass, and scoring batches of one domain,
which `score` arranges) runs with that adapter merged into the weights (`lora_merge`).
Training (`RoutedRewardModel.fit`) fits the router adapter on prompts (KL to one-hot domains),
then each reward adapter on its domain's pairs, one after another; the backbone never changes.

LoRA defaults: rank 16, alpha 32, dropout 0.05, on the attention input projections
(query/key/value, or q/k/v_proj) of every layer. On a CPU, LoRA on the FFN as well cost ~45%
more time per scoring pass for MiniLM (its activations are 4x wider) against ~7% for attention
only; `lora_targets="all-linear"` is there when accuracy matters more. A rank-16 attention
adapter is ~1% of MiniLM (221K parameters), so the backbone plus six adapters is ~18% of what
RODOS loads.

Checkpoint layout: `adapters/<name>/` holds `adapter_config.json` and
`adapter_model.safetensors` (PEFT's own format) and `head.safetensors`, the head trained with
that adapter: a head is never saved apart from its adapter. `model.safetensors` is empty (the
backbone is the pretrained one, re-loaded from `config.backbone`).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from ..backbone import Backbone
from ..checkpoint import load_weights, save_weights
from ..data.sampling import cap_pairs
from ..data.schemas import PreferencePair
from ..errors import CheckpointError, ConfigError
from ..io import atomic_dir
from ..router import ExpertRouter, RouterConfig, fit_router, one_hot
from .base import RewardModel, RewardModelConfig, RewardOutput
from .domain_growth import extend_router, new_domain_pairs
from .end_to_end import TrainedEndToEnd
from .lora_merge import MergedAdapters
from .moe import transformer_layers
from .pairwise_fit import fit_pairwise
from .routed import (KeptPrompts, Parts, RoutedRewardModel, DomainRouterSettings, freeze,
                      on_cached_embeddings, part_name, routing_examples, routing_metric)
from .single import RewardHead
from ..training.seed import seeded_init

ROUTER = "router"


class ArlissConfig(RewardModelConfig):
    arch: Literal["arliss"] = "arliss"
    head_dropout: float = 0.1
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    # "attention": the q/k/v projections; "all-linear": every Linear in the layers; or a list
    # of module-name suffixes.
    lora_targets: Literal["attention", "all-linear"] | list[str] = "attention"
    # LoRA learns at a far higher rate than full fine-tuning (training.lr applies to that).
    # 3e-3 beat 1e-3 by 12 points on chat on the valid split (2 epochs of ~100 pairs).
    adapter_lr: float = Field(default=3e-3, gt=0)
    router: DomainRouterSettings = Field(default_factory=lambda: DomainRouterSettings(max_length=64))

    @model_validator(mode="after")
    def _router_pooling(self) -> "ArlissConfig":
        if self.router.pooling not in ("auto", self.backbone.pooling):
            raise ValueError("the arliss router shares the backbone, and so its pooling: leave router.pooling "
                             "as 'auto' and set backbone.pooling")
        if self.backbone.freeze_layers:  # the base is frozen already; adapters train in every layer
            raise ValueError("backbone.freeze_layers does not apply to arliss (only its LoRA adapters train, "
                             "in every layer); choose the layers with lora_targets")
        return self


def adapter_name(domain: str) -> str:
    return part_name("reward", domain)


# Attention input projections under the names common architectures give them.
ATTENTION_INPUTS = ("query", "key", "value", "q_proj", "k_proj", "v_proj", "qkv_proj", "query_key_value",
                    "c_attn", "Wqkv")


def lora_targets(hf_model: nn.Module, spec: str | list[str]) -> tuple[list[str], list[str] | None]:
    """(target module suffixes, excluded module names) for a `lora_targets` setting. Linears
    outside the layer stack that share a suffix (BERT's unused pooler.dense) are excluded."""
    if isinstance(spec, list):
        if not spec:
            raise ConfigError("lora_targets is an empty list")
        return list(spec), None
    layers = transformer_layers(hf_model)
    suffixes = sorted({n.rsplit(".", 1)[-1] for n, m in layers.named_modules() if isinstance(m, nn.Linear)})
    if spec == "attention":
        attention = [s for s in suffixes if s in ATTENTION_INPUTS]
        if not attention:
            raise ConfigError(f"no attention projections found among {suffixes}; set model.lora_targets "
                              "to 'all-linear' or to a list of module names")
        suffixes = attention
    stack = {id(m) for m in layers.modules()}
    outside = [n for n, m in hf_model.named_modules()
               if isinstance(m, nn.Linear) and id(m) not in stack and n.rsplit(".", 1)[-1] in suffixes]
    return suffixes, outside or None


@contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # PEFT probes a deprecated transformers API
        yield


class _AdapterView(TrainedEndToEnd, RewardModel):
    """One domain's reward model inside ARLISS (the active adapter plus its head), so that the
    generic pairwise trainer can train and validate it."""

    arch = "arliss-adapter"

    def __init__(self, config: ArlissConfig, backbone: Backbone, pairs, head: RewardHead):
        super().__init__(config)
        self.backbone = backbone
        self.pairs = pairs
        self.head = head

    def forward(self, prompts, responses, domains=None) -> RewardOutput:
        enc = self.pairs.pad(self.pairs.encode_pairs(prompts, responses))
        device = self.head.linear.weight.device
        return RewardOutput(rewards=self.head(self.backbone(**{k: v.to(device) for k, v in enc.items()})))


class ArlissRewardModel(RoutedRewardModel):
    arch = "arliss"
    config_class = ArlissConfig
    backbone_in_checkpoint = False  # the frozen pretrained backbone is re-loaded from config.backbone

    def __init__(self, config: ArlissConfig, backbone: Backbone):
        from peft import LoraConfig, get_peft_model

        super().__init__(config)
        if not config.domains:
            raise ConfigError("arliss needs its domains (config.domains); `rm train` takes them from the data")
        targets, excluded = lora_targets(backbone.model, config.lora_targets)
        self._lora = dict(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          target_modules=targets, exclude_modules=excluded, bias="none")
        with _quiet():
            try:
                peft = get_peft_model(backbone.model, LoraConfig(**self._lora), adapter_name=ROUTER)
            except ValueError as e:
                raise ConfigError(f"cannot put LoRA adapters on this backbone ({e}); set model.lora_targets") from None
            for d in config.domains:
                peft.add_adapter(adapter_name(d), LoraConfig(**self._lora))
        # The router's view of the backbone reads short prompts; scoring uses `self.pairs`.
        router_bb = Backbone(config.backbone.model_copy(update={"max_length": config.router.max_length}),
                             peft, backbone.tokenizer)
        self.router = ExpertRouter(RouterConfig(experts=list(config.domains), backbone=router_bb.cfg,
                                                finetune=True, hidden=config.router.hidden), router_bb)
        self.pairs = backbone.pairs
        self.heads = nn.ModuleList(RewardHead(backbone.hidden_size, config.head_dropout) for _ in config.domains)
        self.kept = KeptPrompts()
        self.merged = MergedAdapters(peft)
        self._settle()

    @classmethod
    def build(cls, config: ArlissConfig, *, pretrained: bool = True,
              local_dir: str | Path | None = None) -> "ArlissRewardModel":
        return cls(config, Backbone.load(config.backbone, pretrained=pretrained, local_dir=local_dir))

    @property
    def peft(self):
        return self.router.backbone.model

    def _settle(self) -> None:
        """Outside training everything is frozen and the router adapter is the active one
        (reward adapters are picked per row)."""
        self.peft.set_adapter(ROUTER, inference_mode=True)
        freeze(self)
        self.merged.clear()  # an adapter may have changed

    @contextmanager
    def _active(self, name: str):
        self.peft.set_adapter(name, inference_mode=True)
        try:
            yield
        finally:
            self.peft.set_adapter(ROUTER, inference_mode=True)

    # -- routing and scoring ---------------------------------------------------------------
    @contextmanager
    def _inference(self, name: str):
        """Adapter `name` for a whole pass: merged into the weights (plain-backbone speed) when no
        gradient is wanted, else PEFT's active adapter."""
        if torch.is_grad_enabled():
            with self._active(name):
                yield
        else:
            with self.merged.view(name):
                yield

    def route_probs(self, texts: Sequence[str], batch_size: int) -> torch.Tensor:
        with self._inference(ROUTER):
            return self.router.probs(list(texts), batch_size=batch_size)

    def score_rows(self, texts, responses, experts, weights) -> torch.Tensor:
        if self.training:
            raise ConfigError("arliss scores mixed-adapter batches in eval mode only; training fits one "
                              "adapter at a time (fit)")
        enc = self.pairs.pad(self.pairs.encode_pairs(texts, responses))
        device = self.heads[0].linear.weight.device
        enc = {k: v.to(device) for k, v in enc.items()}
        names = list(dict.fromkeys(adapter_name(e) for e in experts))
        if len(names) == 1:
            # One adapter for the whole batch: merged, it runs at the plain backbone's speed.
            # PEFT's per-row path gathers and scatters every LoRA layer's activations, which
            # costs more than the LoRA itself on a CPU; `score` sorts rows by expert so most
            # batches take this path.
            with self._inference(names[0]):
                pooled = self.router.backbone(**enc)
        else:
            pooled = self.router.backbone(**enc, adapter_names=[adapter_name(e) for e in experts])
        out = torch.empty(len(texts), device=pooled.device)
        for d in dict.fromkeys(experts):
            idx = torch.tensor([i for i, e in enumerate(experts) if e == d], device=pooled.device)
            out[idx] = self.heads[self.config.domains.index(d)](pooled[idx])
        return out

    # -- training (RoutedRewardModel.fit calls these) ----------------------------------------
    def expert_args(self, args):
        return super().expert_args(args).model_copy(update={"lr": self.config.adapter_lr})

    def fit_router(self, texts, labels, v_texts, v_labels, args, parts: Parts) -> dict[str, Any]:
        """The head on cached embeddings, then the LoRA router adapter and the head together."""
        settings = self.config.router
        done = parts.done(ROUTER)
        if done is not None:
            self._load_adapter(done, ROUTER, self.router.head)
            return {"part": ROUTER, "resumed": True}
        targets = one_hot(labels, self.config.domains)
        valid_kw = dict(valid_texts=v_texts or None,
                        valid_targets=one_hot(v_labels, self.config.domains) if v_texts else None,
                        metric=routing_metric(one_hot(v_labels, self.config.domains)) if v_texts else None)
        try:
            # 1) the head on cached embeddings (the adapter is still the identity): cheap, and
            #    the adapter then starts from a head that already routes
            self.router.head.requires_grad_(True)
            with on_cached_embeddings(self.router):
                result = fit_router(self.router, texts, targets, settings.training(args, "head"), **valid_kw,
                                    resume_dir=parts.loop_dir("router-head"), desc="arliss router head")
            # 2) the router adapter and the head together, on the prompts
            if settings.adapter_epochs > 0:
                self.peft.set_adapter(ROUTER)  # makes the router adapter trainable
                result = fit_router(self.router, texts, targets, settings.training(args, "adapter"), **valid_kw,
                                    resume_dir=parts.loop_dir(ROUTER), desc="arliss router adapter")
        finally:
            self._settle()
        parts.save(ROUTER, lambda path: self._save_adapter(path, ROUTER, self.router.head))
        return {"part": ROUTER, "valid_accuracy": result.best_metric, "best_epoch": result.best_epoch,
                "prompts": len(texts), "seconds": result.seconds}

    def fit_expert(self, domain: str, train, valid, args, parts: Parts) -> dict[str, Any]:
        return self._fit_adapter(domain, train, valid, args, parts)

    def _fit_adapter(self, domain: str, train, valid, args, parts: Parts) -> dict[str, Any]:
        name = adapter_name(domain)
        head = self.heads[self.config.domains.index(domain)]
        done = parts.done(name)
        if done is not None:
            self._load_adapter(done, name, head)
            return {"part": name, "resumed": True}
        self.peft.set_adapter(name)  # trainable; every other adapter and the backbone stay frozen
        head.requires_grad_(True)
        view = _AdapterView(self.config.model_copy(update={"domains": [domain]}), self.router.backbone,
                            self.pairs, head)
        try:
            result = fit_pairwise(view, train, valid, args, resume_dir=parts.loop_dir(name), desc=f"arliss {domain}")
        finally:
            self._settle()
        parts.save(name, lambda path: self._save_adapter(path, name, head))
        return {"part": name, "valid_accuracy": result.best_metric, "best_epoch": result.best_epoch,
                "pairs": len(train), "seconds": result.seconds}

    # -- adding a domain -------------------------------------------------------------------
    def add_domain(self, domain: str, train: Sequence[PreferencePair], valid: Sequence[PreferencePair], args,
                   *, resume_dir: Path | None = None) -> dict[str, Any]:
        """A new reward adapter and head for `domain`, and one more router output; the
        backbone, the existing adapters and their heads stay exactly as they were."""
        from peft import LoraConfig

        pairs, v_pairs = new_domain_pairs(self, domain, train, valid)
        pairs = cap_pairs(pairs, args.max_pairs, args.seed)
        seeded_init(args.seed, adapter_name(domain))  # the new adapter and head start the same for a seed
        with _quiet():
            self.peft.add_adapter(adapter_name(domain), LoraConfig(**self._lora))
        self.heads.append(RewardHead(self.router.backbone.hidden_size, self.config.head_dropout))
        self.config = self.config.model_copy(update={"domains": [*self.config.domains, domain]})
        self._settle()
        parts = self.parts_for(resume_dir, f"add-domain:{domain}", args, pairs, v_pairs)
        record = self._fit_adapter(domain, pairs, v_pairs, self.expert_args(args), parts)
        texts, _ = routing_examples(pairs)
        v_texts, _ = routing_examples(v_pairs)
        try:
            router_record = extend_router(self.router, domain, self.kept, texts, v_texts, self.config.router,
                                          args, resume_dir=parts.loop_dir("router+"))
        finally:
            self._settle()
        return {"adapter": record, "router": router_record}

    # -- saving: each adapter with its head ------------------------------------------------
    def _units(self) -> list[tuple[str, nn.Module]]:
        return [(ROUTER, self.router.head)] + [(adapter_name(d), h) for d, h in zip(self.config.domains, self.heads)]

    def _save_adapter(self, folder: Path, name: str, head: nn.Module) -> None:
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        with atomic_dir(folder) as tmp:
            state = get_peft_model_state_dict(self.peft, adapter_name=name)
            save_file({k: v.detach().contiguous().clone() for k, v in state.items()},
                      str(tmp / "adapter_model.safetensors"))
            self._portable_config(name).save_pretrained(str(tmp))
            save_weights(head, tmp / "head.safetensors")

    def _portable_config(self, name: str):
        """The adapter's LoRA config as PEFT's loaders want it: the base model it belongs on and a
        task type, so `AutoPeftModelForFeatureExtraction.from_pretrained(adapters/<name>)` finds both."""
        import copy

        from ..backbone import resolve

        cfg = copy.deepcopy(self.peft.peft_config[name])
        base, gguf = resolve(self.config.backbone)
        cfg.base_model_name_or_path = base if gguf is None else self.config.backbone.name_or_path
        cfg.task_type = "FEATURE_EXTRACTION"  # AutoPeftModelForFeatureExtraction; the head is head.safetensors
        return cfg

    def _load_adapter(self, folder: Path, name: str, head: nn.Module) -> None:
        from peft import get_peft_model_state_dict, set_peft_model_state_dict
        from safetensors.torch import load_file

        file = folder / "adapter_model.safetensors"
        if not file.exists():
            raise CheckpointError(f"{folder}: adapter '{name}' is missing ({file.name} not found)")
        try:
            state = load_file(str(file))
        except Exception as e:
            raise CheckpointError(f"{file}: cannot read adapter weights ({e})") from None
        expected = get_peft_model_state_dict(self.peft, adapter_name=name)
        if state.keys() != expected.keys():
            raise CheckpointError(f"{file}: adapter '{name}' does not fit this backbone "
                                  f"({len(state)} tensors, expected {len(expected)})")
        for k, v in state.items():
            if v.shape != expected[k].shape:
                raise CheckpointError(f"{file}: '{k}' has shape {tuple(v.shape)}, expected "
                                      f"{tuple(expected[k].shape)} (a different LoRA rank?)")
        set_peft_model_state_dict(self.peft, state, adapter_name=name)
        load_weights(head, folder / "head.safetensors", head.state_dict().keys(), f"the head of adapter '{name}'")
        self._settle()

    def persisted_keys(self) -> list[str]:
        return []  # everything trained lives in adapters/<name>/, each adapter with its head

    def save_parts(self, folder: Path) -> None:
        for name, head in self._units():
            self._save_adapter(folder / "adapters" / name, name, head)
        self.kept.save(folder)

    def load_parts(self, folder: Path) -> None:
        for name, head in self._units():
            sub = folder / "adapters" / name
            if not sub.is_dir():
                raise CheckpointError(f"{folder}: adapter '{name}' and its head are missing (expected {sub})")
            self._load_adapter(sub, name, head)
        self.kept = KeptPrompts.load(folder)

    def param_report(self) -> dict[str, Any]:
        report = super().param_report()
        lora = {name: 0 for name, _ in self._units()}
        for n, p in self.peft.named_parameters():
            if "lora_" in n:
                lora[n.split(".")[-2]] += p.numel()
        report["backbone"] = report["total"] - sum(lora.values()) - sum(
            p.numel() for _, h in self._units() for p in h.parameters())
        report["per_adapter"] = {name: lora[name] + sum(p.numel() for p in head.parameters())
                                 for name, head in self._units()}
        return report
