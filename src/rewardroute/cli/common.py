"""Helpers shared by the CLI command modules."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Annotated, Any

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


# Options every heavy command shares (rewardroute.runtime): where and how precisely it computes.
DeviceOption = Annotated[str, typer.Option(
    help="auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps. Under torchrun/accelerate launch "
         "each process takes its own GPU.")]
PrecisionOption = Annotated[str, typer.Option(help="fp32, bf16 (CPUs and GPUs that support it) or fp16 (CUDA only).")]


def runtime_config(device: str, precision: str):
    """The RuntimeConfig for --device/--precision (a bad value is a user error naming the flag)."""
    from ..config_overrides import validate_settings
    from ..runtime import RuntimeConfig

    return validate_settings(RuntimeConfig, {"device": device, "precision": precision})
