"""The `rewardroute` command line. Each command group lives in its own module."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="rewardroute",
    help="Route to the expert: domain-robust reward models and reward-guided LLM routing.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every subcommand
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"rewardroute {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Route to the expert: domain-robust reward models and reward-guided LLM routing.

    Exit codes: 0 success, 2 a problem with the input (file, flag, setting, checkpoint), 1 an
    internal failure (a bug: please report it with the traceback)."""

# (module, group name); modules are imported here, at CLI start, never at package import.
_GROUPS = [
    ("data", "data"),
    ("rm", "rm"),
    ("router", "router"),
    ("serve", None),
    ("demo", None),
]

for _module, _name in _GROUPS:
    mod = importlib.import_module(f"{__name__}.{_module}")
    if _name is None:
        mod.register(app)
    else:
        app.add_typer(mod.app, name=_name)


def main() -> None:
    from ..runtime import end_processes

    try:
        app()
    finally:  # under torchrun / accelerate launch: leave the process group cleanly
        end_processes()
