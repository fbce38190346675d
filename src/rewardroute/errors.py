"""Errors that say where the problem is: file, line and field."""

from __future__ import annotations

from pathlib import Path


class RewardRouteError(Exception):
    """Base class for every error rewardroute raises on purpose."""


class DataError(RewardRouteError, ValueError):
    """A record that cannot be read: names the file, the line and the field."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None,
                 field: str | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.reason = message
        where = ""
        if self.path is not None:
            where = self.path + (f":{line}" if line is not None else "")
        if field is not None:
            where = f"{where} field '{field}'" if where else f"field '{field}'"
        super().__init__(f"{where}: {message}" if where else message)


class SourceMissingError(RewardRouteError, FileNotFoundError):
    """A public data source is not on disk; the message says where to get it."""


class CheckpointError(RewardRouteError):
    """A checkpoint that cannot be loaded; the message says why."""


class ConfigError(RewardRouteError, ValueError):
    """A configuration value that cannot work."""
