"""`rewardroute demo`: the main job on the shipped defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import cli_errors


def run_command(args: list[str]) -> None:
    """Run one `rewardroute` command in this process, echoing it first (the demo's steps)."""
    import shlex

    from ..console import console
    from ..errors import RewardRouteError
    from . import app

    console.print(f"[bold cyan]$ rewardroute {shlex.join(args)}[/]", highlight=False)
    try:
        app(args=args, standalone_mode=False)
    except SystemExit as e:  # typer.Exit from a failing command
        if e.code:
            raise RewardRouteError(f"`rewardroute {shlex.join(args)}` failed (exit {e.code})") from None


def register(app: typer.Typer) -> None:
    @app.command(epilog="""
Examples:

  rewardroute demo

  rewardroute demo --config demo.yaml --set train_per_domain=400 --set 'archs=\\[single]'
""")
    def demo(
        config: Annotated[Optional[Path], typer.Option(help="YAML/JSON with DemoConfig fields.")] = None,
        set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override one setting: key=value.")] = None,
    ) -> None:
        """Build the data, train the baseline and ARLISS reward models (accuracy tables), then a Zooter router."""
        with cli_errors():
            from ..config_overrides import apply_overrides, load_config_file, validate_settings
            from ..demo import DemoConfig, run_demo
            run_demo(validate_settings(DemoConfig, apply_overrides(load_config_file(config), set_)), run_command)
