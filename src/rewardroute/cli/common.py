"""Helpers shared by the CLI command modules."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import typer
from pydantic import ValidationError

from ..console import console
from ..errors import RewardRouteError


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn our own errors into one red line and exit code 2, without a traceback."""
    try:
        yield
    except RewardRouteError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from None
    except ValidationError as e:  # a config value from a file or --set
        console.print(f"[bold red]error:[/] invalid settings: {e}", highlight=False)
        raise typer.Exit(2) from None


def print_json(obj: Any) -> None:
    """One JSON object on stdout, nothing else."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()
