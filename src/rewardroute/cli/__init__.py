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
)

# (module, group name); modules are imported here, at CLI start, never at package import.
_GROUPS = [
    ("data", "data"),
    ("rm", "rm"),
    ("router", "router"),
    ("serve", None),
    ("demo", None),
    ("bench", "bench"),
]

for _module, _name in _GROUPS:
    try:
        mod = importlib.import_module(f"{__name__}.{_module}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{_module}":
            raise
        continue
    if _name is None:
        mod.register(app)
    else:
        app.add_typer(mod.app, name=_name)


def main() -> None:
    app()
