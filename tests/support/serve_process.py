"""Real processes for the serve end-to-end tests: `rewardroute serve` itself, and a llama.cpp
server the test can kill mid-run (built from the pieces of `support.llama_server`)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


from support.llama_server import HOST, LlamaServerSpec, free_port, wait_ready, smollm2_gguf


@dataclass
class Proc:
    url: str  # http://127.0.0.1:PORT (the OpenAI base URL for llama.cpp servers)
    proc: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send `sig` and wait; the exit code (uvicorn re-raises SIGTERM after a graceful shutdown)."""
        return _stop(self.proc, sig)


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


@contextlib.contextmanager
def killable_llama_server(spec: LlamaServerSpec, log_dir: Path) -> Iterator[Proc]:
    """Like `support.llama_server.llama_server`, but the test gets the process to kill."""
    port = free_port()
    url = f"http://{HOST}:{port}/v1"
    log = log_dir / f"llama-{spec.name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(spec.command(smollm2_gguf(), port), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        wait_ready(url, proc, log, 60.0)
        yield Proc(url, proc, log)
    finally:
        _stop(proc)


def rewardroute_command() -> list[str]:
    script = Path(sys.executable).parent / "rewardroute"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from rewardroute.cli import main; main()"]


@contextlib.contextmanager
def serve_process(config: Path, env: dict[str, str] | None = None, timeout_s: float = 120.0) -> Iterator[Proc]:
    """`rewardroute serve --config CONFIG` on a free loopback port; stopped with SIGTERM after."""
    port = free_port()
    log = config.with_suffix(".log")
    cmd = rewardroute_command() + ["serve", "--config", str(config), "--host", HOST, "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})})
    url = f"http://{HOST}:{port}"
    handle = Proc(url, proc, log)
    try:
        wait_ready(url, proc, log, timeout_s, what="rewardroute serve", probe="/health/live")
        yield handle
    finally:
        _stop(proc)
