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


RoutingPrecisionOption = Annotated[str, typer.Option(
    help="fp32, bf16 (CPUs and GPUs that support it), fp16 (CUDA only) or int8 (CPU: the router's encoder "
         "dynamically quantised, about 2x faster per query; its kNN memory and head stay as trained).")]


def runtime_config(device: str, precision: str, *, int8: bool = False):
    """The RuntimeConfig for --device/--precision (a bad value is a user error naming the flag).
    `int8` is accepted only where a command says so: routing, not training or reward scoring."""
    from ..config_overrides import validate_settings
    from ..runtime import RuntimeConfig

    if precision == "int8" and not int8:
        raise typer.BadParameter("int8 is for routing only (router route, serve's router); "
                                 "use fp32, bf16 or fp16", param_hint="--precision")
    return validate_settings(RuntimeConfig, {"device": device, "precision": precision})
