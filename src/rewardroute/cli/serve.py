"""`rewardroute serve`: the routing proxy and reward API (see `rewardroute.serve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import cli_errors

EPILOG = """
Examples:

  rewardroute serve --config serve.yaml

  rewardroute serve --config serve.yaml --host 0.0.0.0 --port 8080 --workers 2

Clients use any OpenAI SDK with base_url http://HOST:PORT/v1 and model "rewardroute",
"rewardroute:cost_aware:0.2" or a backend's name; RLHF trainers POST /v1/rewards.
Each worker loads its own router and reward models. See examples/serve.yaml.
"""


def register(app: typer.Typer) -> None:
    @app.command(epilog=EPILOG)
    def serve(
        config: Annotated[Path, typer.Option(help="serve.yaml: backends, router, reward models, auth, limits.")],
        host: Annotated[Optional[str], typer.Option(help="Interface to bind (default: server.host).")] = None,
        port: Annotated[Optional[int], typer.Option(help="Port (default: server.port).")] = None,
        workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes (default: server.workers).")] = None,
        log_level: Annotated[Optional[str], typer.Option(help="critical, error, warning, info or debug.")] = None,
        device: Annotated[Optional[str], typer.Option(help="Where the router and reward models run: auto, cpu, cuda, cuda:N, mps (default: server.device).")] = None,
        precision: Annotated[Optional[str], typer.Option(help="float32 or bfloat16 for the router and reward models, or int8 for the router alone on CPUs (default: as in the config).")] = None,
    ) -> None:
        """Serve an OpenAI-compatible routing proxy and a reward-scoring API."""
        with cli_errors():
            import os

            from ..serve.config import DEVICE_ENV, PRECISION_ENV, check_paths, load_serve_config
            from ..serve.server import run_server

            for env, value in ((DEVICE_ENV, device), (PRECISION_ENV, precision)):
                if value is not None:
                    os.environ[env] = value  # the workers read the config again: they see it too
            cfg = load_serve_config(config)
            check_paths(cfg)
            run_server(config, cfg, host=host, port=port, workers=workers, log_level=log_level)
