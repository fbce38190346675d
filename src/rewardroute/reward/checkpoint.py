"""Saving and loading reward models.

Layout of a reward-model directory:
  config.json          {"format": "rewardroute.reward", "version": 1, "arch": ..., "config": {...}}
  model.safetensors    every weight except a frozen pretrained backbone's
  backbone/            the transformers config and tokenizer, when the backbone is saved
  other files          an architecture may add its own (`save_extra` / `load_extra`)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..checkpoint import frozen_keys, load_weights, read_meta, save_weights, write_meta
from ..errors import CheckpointError
from ..io import atomic_dir
from .base import RewardModel
from .registry import get_arch

FORMAT = "rewardroute.reward"
VERSION = 1
WEIGHTS = "model.safetensors"


def keys_to_save(model: RewardModel) -> list[str]:
    """Every state key, less the frozen pretrained weights of a model that does not save them."""
    keys = list(model.state_dict().keys())
    if model.saves_backbone:
        return keys
    frozen = frozen_keys(model)
    return [k for k in keys if k not in frozen]


def save_model(model: RewardModel, out: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write `model` to `out` atomically. Returns `out`."""
    out = Path(out)
    with atomic_dir(out) as tmp:
        save_weights(model, tmp / WEIGHTS, keys_to_save(model), metadata={"arch": model.arch})
        if model.saves_backbone and hasattr(model, "backbone"):
            model.backbone.save_reference(tmp / "backbone")
        if hasattr(model, "save_extra"):
            model.save_extra(tmp)
        fields: dict[str, Any] = {"arch": model.arch, "config": model.config.model_dump(mode="json")}
        if extra:
            fields["extra"] = extra
        write_meta(tmp, FORMAT, VERSION, **fields)
    return out


def read_reward_meta(path: str | Path) -> dict[str, Any]:
    return read_meta(path, FORMAT, VERSION)


def load_model(path: str | Path, *, expect_arch: str | None = None) -> RewardModel:
    """Load a reward model from a checkpoint directory; say why when that fails."""
    path = Path(path)
    meta = read_reward_meta(path)
    arch = meta.get("arch")
    if expect_arch is not None and arch != expect_arch:
        raise CheckpointError(f"{path}: this checkpoint is a '{arch}' reward model, not '{expect_arch}'")
    cls = get_arch(arch)
    try:
        config = cls.config_class.model_validate(meta["config"])
    except (ValidationError, KeyError) as e:
        raise CheckpointError(f"{path}/config.json: invalid '{arch}' config: {e}") from None
    local = path / "backbone"
    if cls.saves_backbone and local.exists():
        model = cls.build(config, pretrained=False, local_dir=local)
    else:
        model = cls.build(config, pretrained=True)
    if hasattr(model, "load_extra"):
        model.load_extra(path)
    load_weights(model, path / WEIGHTS, keys_to_save(model), f"a '{arch}' model")
    model.eval()
    return model
