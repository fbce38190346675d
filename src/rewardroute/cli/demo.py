"""`rewardroute demo`: the main job on the shipped defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import cli_errors


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
            run_demo(validate_settings(DemoConfig, apply_overrides(load_config_file(config), set_)))
