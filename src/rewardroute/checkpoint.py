"""Checkpoint plumbing shared by reward models and routers.

A checkpoint is a directory with `config.json` (`{"format", "version", ...}`) and
safetensors weights, written to a temporary directory and renamed into place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import CheckpointError

META = "config.json"

# What each checkpoint format is, and the commands that take it (for errors on the wrong kind).
KINDS = {
    "rewardroute.reward": ("a reward model", "rm eval/score/export, router score --rm, serve rewards.models"),
    "rewardroute.router": ("a router", "router route/eval, serve router.path"),
}


def _describe(fmt: Any, meta: dict[str, Any]) -> str:
    if fmt in KINDS:
        what, commands = KINDS[fmt]
        kind = meta.get("arch") or (meta.get("config", {}).get("meta", {}) or {}).get("kind")
        return f"{what}{f' ({kind})' if kind else ''}, which {commands} take"
    if "model_type" in meta or "architectures" in meta:
        return "a transformers model folder (give it as --backbone, or `router score --rm` for reward models)"
    return f"format {fmt!r}"


def read_meta(path: str | Path, fmt: str, version: int) -> dict[str, Any]:
    """The checkpoint's config.json, checked for format and version."""
    path = Path(path)
    cfg_file = path / META
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a checkpoint directory (it does not exist or is a file)")
    if not cfg_file.exists():
        raise CheckpointError(f"{path}: no {META}; is this a rewardroute {fmt.split('.')[-1]} checkpoint?")
    try:
        meta = json.loads(cfg_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{cfg_file}: malformed JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        got = meta.get("format") if isinstance(meta, dict) else None
        want = KINDS.get(fmt, (fmt,))[0]
        raise CheckpointError(f"{path} is {_describe(got, meta if isinstance(meta, dict) else {})}; "
                              f"this command needs {want}")
    if meta.get("version") != version:
        raise CheckpointError(f"{cfg_file}: checkpoint version {meta.get('version')} is not supported "
                              f"(this rewardroute reads version {version})")
    return meta


def write_meta(folder: Path, fmt: str, version: int, **fields: Any) -> None:
    meta = {"format": fmt, "version": version, **fields}
    (folder / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def save_weights(module: nn.Module, file: Path, keys: Iterable[str] | None = None,
                 metadata: dict[str, str] | None = None) -> None:
    state = module.state_dict()
    keys = list(state) if keys is None else list(keys)
    # clone: safetensors refuses tensors that share storage
    save_file({k: state[k].detach().cpu().contiguous().clone() for k in keys}, str(file), metadata=metadata)


def load_weights(module: nn.Module, file: Path, expected_keys: Iterable[str], what: str) -> None:
    """Load `file` into `module`, checking the key set and shapes; errors say what is wrong."""
    if not file.exists():
        raise CheckpointError(f"{file.parent}: {file.name} is missing")
    try:
        state = load_file(str(file))
    except Exception as e:  # corrupt or truncated file
        raise CheckpointError(f"{file}: cannot read weights ({e})") from None
    expected = set(expected_keys)
    missing = sorted(expected - state.keys())
    unexpected = sorted(state.keys() - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{file}: weights do not match {what} "
            f"(missing {len(missing)}: {missing[:3]}; unexpected {len(unexpected)}: {unexpected[:3]})")
    current = module.state_dict()
    for k, v in state.items():
        if tuple(v.shape) != tuple(current[k].shape):
            raise CheckpointError(f"{file}: '{k}' has shape {tuple(v.shape)}, {what} expects "
                                  f"{tuple(current[k].shape)}")
    module.load_state_dict(state, strict=False)


def frozen_keys(module: nn.Module) -> set[str]:
    return {n for n, p in module.named_parameters() if not p.requires_grad}


def to_device_of(module: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    device = next(module.parameters()).device
    return {k: v.to(device) for k, v in batch.items()}
