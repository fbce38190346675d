"""Config files and `--set key=value` overrides for the CLI.

A config file (YAML or JSON) holds sections such as `model:` and `training:`; `--set
training.lr=1e-4` overrides one value. Values are parsed as YAML scalars, so `3`, `1e-4`,
`true` and `[a, b]` mean what they look like.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """The parsed YAML (or JSON) in `path`; a ConfigError names the file when it is missing or
    malformed. The one place rewardroute reads a settings file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: cannot parse ({e})") from None


def load_config_file(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def apply_overrides(base: dict[str, Any], sets: list[str] | None) -> dict[str, Any]:
    """Apply `a.b.c=value` strings to a nested dict (in place) and return it."""
    for item in sets or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = base
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: '{part}' is not a section")
        node[parts[-1]] = value
    return base
