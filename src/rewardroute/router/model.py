"""ExpertRouter: backbone + head -> a distribution over K experts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from pydantic import ValidationError
from torch import nn

from ..backbone import Backbone, count_parameters
from ..checkpoint import frozen_keys, load_weights, read_meta, save_weights, write_meta
from ..data.schemas import Prompt, render_prompt
from ..errors import CheckpointError, ConfigError
from ..io import atomic_dir
from .router_config import RouterConfig

FORMAT = "rewardroute.router"
VERSION = 1
WEIGHTS = "router.safetensors"


class RouterHead(nn.Module):
    def __init__(self, hidden_in: int, n_out: int, hidden: int | None, dropout: float):
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden:
            layers += [nn.Linear(hidden_in, hidden), nn.GELU(), nn.Dropout(dropout)]
            hidden_in = hidden
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(hidden_in, n_out)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


class ExpertRouter(nn.Module):
    """`probs(texts) -> [N, K]` over `config.experts`; `route(texts, k)` gives the top k."""

    def __init__(self, config: RouterConfig, backbone: Backbone):
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.head = RouterHead(backbone.hidden_size, len(config.experts), config.hidden, config.dropout)
        if not config.finetune:
            for p in self.backbone.parameters():
                p.requires_grad_(False)

    @classmethod
    def build(cls, config: RouterConfig, backbone: Backbone | None = None, *, pretrained: bool = True,
              local_dir: str | Path | None = None) -> "ExpertRouter":
        """A new router; pass `backbone` to share one already loaded (ARLISS does)."""
        if backbone is None:
            backbone = Backbone.load(config.backbone, pretrained=pretrained, local_dir=local_dir)
        return cls(config, backbone)

    @property
    def experts(self) -> list[str]:
        return self.config.experts

    # -- forward -----------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], **backbone_kwargs) -> torch.Tensor:
        """Pooled backbone vectors for the texts (one batch, with grad if fine-tuning)."""
        enc = self.backbone.pairs.pad(self.backbone.pairs.encode_texts(texts))
        device = self.head.out.weight.device
        return self.backbone(**{k: v.to(device) for k, v in enc.items()}, **backbone_kwargs)

    def forward(self, texts: Sequence[str], **backbone_kwargs) -> torch.Tensor:
        """Logits [B, K]."""
        return self.head(self.encode(texts, **backbone_kwargs))

    @torch.no_grad()
    def embed(self, texts: Sequence[Prompt], batch_size: int = 64, **backbone_kwargs) -> torch.Tensor:
        """Backbone vectors [N, H] for any number of texts (no grad), in input order."""
        flat = [render_prompt(t) for t in texts]
        was = self.training
        self.eval()
        out = torch.empty(len(flat), self.backbone.hidden_size)
        order = sorted(range(len(flat)), key=lambda i: len(flat[i]))
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            out[idx] = self.encode([flat[i] for i in idx], **backbone_kwargs).float().cpu()
        self.train(was)
        return out

    @torch.no_grad()
    def probs_from_embeddings(self, emb: torch.Tensor) -> torch.Tensor:
        was = self.training
        self.eval()
        p = torch.softmax(self.head(emb.to(self.head.out.weight.device)), dim=-1).cpu()
        self.train(was)
        return p

    @torch.no_grad()
    def probs(self, texts: Sequence[Prompt], batch_size: int = 64, **backbone_kwargs) -> torch.Tensor:
        return self.probs_from_embeddings(self.embed(texts, batch_size, **backbone_kwargs))

    def route(self, texts: Sequence[Prompt], k: int = 1) -> list[list[tuple[str, float]]]:
        """The top-k experts with their probabilities, for each text."""
        if k < 1:
            raise ConfigError("k must be at least 1")
        p = self.probs(texts)
        top = torch.topk(p, min(k, p.size(-1)), dim=-1)
        return [[(self.experts[j], float(v)) for v, j in zip(vals.tolist(), idx.tolist())]
                for vals, idx in zip(top.values, top.indices)]

    # -- growing -----------------------------------------------------------------------------
    def add_experts(self, names: Sequence[str]) -> None:
        """Append experts: the head gains rows, initialised to the mean of the existing ones
        (so a new expert starts as likely as an average one). Retrain the head afterwards."""
        dup = [n for n in names if n in self.experts]
        if dup:
            raise ConfigError(f"experts already present: {dup}")
        old = self.head.out
        new = nn.Linear(old.in_features, old.out_features + len(names))
        with torch.no_grad():
            new.weight[: old.out_features] = old.weight
            new.bias[: old.out_features] = old.bias
            new.weight[old.out_features:] = old.weight.mean(dim=0, keepdim=True)
            new.bias[old.out_features:] = old.bias.mean()
        self.head.out = new
        self.config = self.config.model_copy(update={"experts": self.experts + list(names)})

    def param_report(self) -> dict[str, int]:
        return count_parameters(self)


def _keys(router: ExpertRouter) -> list[str]:
    keys = list(router.state_dict())
    if router.config.finetune:
        return keys
    frozen = frozen_keys(router)
    return [k for k in keys if k not in frozen]


def save_router(router: ExpertRouter, out: str | Path, extra: dict | None = None) -> Path:
    """Atomically write the router: config, head (and backbone weights if fine-tuned)."""
    out = Path(out)
    with atomic_dir(out) as tmp:
        save_weights(router, tmp / WEIGHTS, _keys(router))
        if router.config.finetune:
            router.backbone.save_reference(tmp / "backbone")
        write_meta(tmp, FORMAT, VERSION, config=router.config.model_dump(mode="json"), **(extra or {}))
    return out


def load_router(path: str | Path, backbone: Backbone | None = None) -> ExpertRouter:
    path = Path(path)
    meta = read_meta(path, FORMAT, VERSION)
    try:
        config = RouterConfig.model_validate(meta["config"])
    except (ValidationError, KeyError) as e:
        raise CheckpointError(f"{path}/config.json: invalid router config: {e}") from None
    local = path / "backbone"
    if backbone is None and config.finetune and local.exists():
        router = ExpertRouter.build(config, pretrained=False, local_dir=local)
    else:
        router = ExpertRouter.build(config, backbone)
    load_weights(router, path / WEIGHTS, _keys(router), "this router")
    router.eval()
    return router


def read_router_meta(path: str | Path) -> dict:
    return read_meta(path, FORMAT, VERSION)
