"""Run the app under uvicorn (what `rewardroute serve` calls)."""

from __future__ import annotations

import os
from pathlib import Path

from .app import CONFIG_ENV
from .config import ServeConfig
from .protocol import SPEC as HTTP_PROTOCOL


def run_server(config_path: str | Path, config: ServeConfig, *, host: str | None = None, port: int | None = None,
               workers: int | None = None, log_level: str | None = None) -> None:
    """Blocks until the server stops. uvicorn handles SIGINT/SIGTERM gracefully: it stops
    accepting, lets in-flight requests finish (up to `server.graceful_timeout_s`), then runs
    the app's shutdown, which closes the backend pool and the batchers."""
    import uvicorn

    os.environ[CONFIG_ENV] = str(Path(config_path).resolve())  # every worker process reads it
    s = config.server
    uvicorn.run("rewardroute.serve.app:app_from_env", factory=True, host=host or s.host,
                port=s.port if port is None else port, workers=workers or s.workers,
                log_level=log_level or s.log_level, timeout_graceful_shutdown=s.graceful_timeout_s,
                proxy_headers=False, server_header=False, http=HTTP_PROTOCOL)
