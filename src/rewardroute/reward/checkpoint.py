"""Saving and loading reward models.

Layout of a reward-model directory:
  config.json          {"format": "rewardroute.reward", "version": 1, "arch": ..., "config": {...}}
  model.safetensors    every weight except a frozen pretrained backbone's
  backbone/            the transformers config and tokenizer, when the backbone is saved
  other files          an architecture's parts (`save_parts` / `load_parts`: experts, adapters)

What goes where is declared by each architecture (`persisted_keys`, `backbone_in_checkpoint`,
`reference_backbone`, `save_parts`); nothing here guesses from attributes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..checkpoint import load_weights, read_meta, save_weights, write_meta
from ..errors import CheckpointError
from ..io import atomic_dir
from .base import RewardModel
from .registry import get_arch

FORMAT = "rewardroute.reward"
VERSION = 1
WEIGHTS = "model.safetensors"


def save_model(model: RewardModel, out: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write `model` to `out` atomically. Returns `out`."""
    out = Path(out)
    with atomic_dir(out) as tmp:
        save_weights(model, tmp / WEIGHTS, model.persisted_keys(), metadata={"arch": model.arch})
        backbone = model.reference_backbone() if model.backbone_in_checkpoint else None
        if backbone is not None:
            backbone.save_reference(tmp / "backbone")
        model.save_parts(tmp)
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
    if cls.backbone_in_checkpoint and local.exists():
        model = cls.build(config, pretrained=False, local_dir=local)
    else:
        model = cls.build(config, pretrained=True)
    model.load_parts(path)
    load_weights(model, path / WEIGHTS, model.persisted_keys(), f"a '{arch}' model")
    model.eval()
    return model
