"""Config files and `--set key=value` overrides for the CLI.

A config file (YAML or JSON) holds sections such as `model:` and `training:`; `--set
training.lr=1e-4` overrides one value. Values are parsed as YAML scalars, so `3`, `1e-4`,
`true` and `[a, b]` mean what they look like.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError

M = TypeVar("M", bound=BaseModel)


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


def apply_flags(base: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """Set each dotted key of `flags` whose value is not None (a flag the user gave) on the nested
    dict `base` (in place) and return it: how every command turns its flags into settings, after
    the config file and `--set` (flags win)."""
    for key, value in flags.items():
        if value is None:
            continue
        node = base
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return base


def _valid_keys(cls: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted names a user may set on `cls`, nested settings models included."""
    out = []
    for name, f in cls.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _valid_keys(ann, f"{prefix}{name}.")
        else:
            out.append(f"{prefix}{name}")
    return out


def validate_settings(cls: type[M], data: dict[str, Any], *, section: str = "") -> M:
    """`cls.model_validate(data)`, with errors that name the key a user wrote and, for an unknown
    key, list the valid ones. The one place settings from files and flags become typed objects."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        prefix = f"{section}." if section else ""
        problems = []
        for err in e.errors():
            where = prefix + ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown setting '{where}'")
            else:
                problems.append(f"'{where}': {err['msg']}")
        msg = "invalid settings: " + "; ".join(problems)
        if any(err["type"] == "extra_forbidden" for err in e.errors()):
            msg += ". Valid keys: " + ", ".join(_valid_keys(cls, prefix))
        raise ConfigError(msg) from None


def split_sections(cfg: dict[str, Any], sections: dict[str, type[BaseModel]]) -> dict[str, BaseModel]:
    """Each named section of a config validated by its class; a key outside every section (e.g.
    `--set lr=0.5` for `training.lr`) is an error listing the valid keys, never ignored."""
    unknown = [k for k in cfg if k not in sections]
    if unknown:
        valid = [k for name, cls in sections.items() for k in _valid_keys(cls, f"{name}.")]
        raise ConfigError(f"unknown setting(s) {', '.join(repr(k) for k in unknown)}: settings live in sections "
                          f"({', '.join(sections)}). Valid keys: {', '.join(valid)}")
    return {name: validate_settings(cls, dict(cfg.get(name) or {}), section=name) for name, cls in sections.items()}
