"""Fault matrix of `rewardroute serve`: what clients see while a backend misbehaves.

    python benchmarks/serve_faults.py            # 32 clients x 320 requests per fault (about 2-3 minutes)
    python benchmarks/serve_faults.py --quick    # a smoke run (results go to serve_faults_quick.json)

For each fault a fresh `rewardroute serve` (1 worker) runs on loopback in front of two
backends, `alpha` (ranked first: no router, so the argmax of a tie) and `beta` (healthy).
Both are `benchlib.fault_backend.FaultBackend`s in this process: real sockets, so a
hang, a trickle or a dropped connection is what the proxy really sees. Proxy settings:
alpha `timeout_s` 2, 1 retry, 8 concurrent; breaker after 3 failures for 5 s.

Faults of alpha: 500, garbage (200 with a body that is not JSON), close (drops the connection
unanswered), hang (never answers), trickle (1 byte/s), flap (ok and close by turns, 0.25 s each);
all_down (neither backend listens: 5xx is the right answer there); poison (both healthy, a
reward model and a MiniLM router loaded, and 1 client in 4 sends poisoned requests: a lone
surrogate in a chat message or a reward prompt, NaN in a pass-through field; the 24 good
clients' requests must all succeed).

Per fault: sent, answered, 2xx/4xx/5xx, lost (no HTTP answer at all), p50/p99 latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from benchlib.bench import command_line, machine, publish
from benchlib.fault_backend import FaultBackend

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import (build_reward_model, build_router, free_port, make_prompts,  # noqa: E402
                        rewardroute_serve, run_load)

FAULTS = ("500", "garbage", "close", "hang", "trickle", "flap", "all_down", "poison")
ALPHA = {"timeout_s": 2.0, "max_retries": 1, "max_concurrency": 8}
RESILIENCE = {"failure_threshold": 3, "reset_after_s": 5.0, "retry_base_s": 0.05, "retry_cap_s": 0.2}


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=320, help="requests per fault")
    ap.add_argument("--faults", default=",".join(FAULTS), help="comma list, a subset of " + ",".join(FAULTS))
    ap.add_argument("--quick", action="store_true", help="a smoke run")
    ap.add_argument("--out", default="serve_faults", help="results name and RESULTS.md section")
    ap.add_argument("--no-results-md", action="store_true", help="do not touch benchmarks/RESULTS.md")
    args = ap.parse_args()
    args.faults = [f for f in args.faults.split(",") if f]
    unknown = sorted(set(args.faults) - set(FAULTS))
    if unknown:
        ap.error(f"unknown faults {unknown}; choose from {FAULTS}")
    if args.quick:
        args.requests = 64
        args.out += "_quick"  # never overwrite the real figures
    return args


def log(msg: str) -> None:
    print(f"[serve_faults] {msg}", file=sys.stderr, flush=True)


def chat_body(text: str, **extra) -> bytes:
    return json.dumps({"model": "rewardroute", "max_tokens": 8,
                       "messages": [{"role": "user", "content": text}], **extra}).encode()


def reward_body(prompt: str, response: str) -> bytes:
    return json.dumps({"model": "rm", "input": [{"prompt": prompt, "response": response}]}).encode()


# Poisoned requests, as raw JSON: each is valid JSON that no model or backend can use.
POISON = [
    b'{"model": "rewardroute", "messages": [{"role": "user", "content": "What is 2+2? \\ud800"}]}',
    b'{"model": "rewardroute", "messages": [{"role": "user", "content": "Hi"}], "logit_bias": {"1": NaN}}',
    b'{"model": "rm", "input": [{"prompt": "\\udfff broken", "response": "ok"}]}',
]


def summary(stats: dict) -> dict:
    """One row: sent, answered, by status class, lost, latency."""
    by_class = {"2xx": 0, "4xx": 0, "5xx": 0}
    for code, n in stats["statuses"].items():
        by_class[f"{code[0]}xx"] = by_class.get(f"{code[0]}xx", 0) + n
    return {"sent": stats["requests"], "answered": stats["answered"], **by_class, "lost": stats["lost"],
            "p50_ms": stats["p50_ms"], "p99_ms": stats["p99_ms"], "statuses": stats["statuses"],
            "first_failure": stats["first_failure"]}


def merge(parts: list[dict]) -> dict:
    ms = np.concatenate([p["_ms"] for p in parts])
    statuses: dict[str, int] = {}
    for p in parts:
        for k, v in p["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    return {"requests": sum(p["requests"] for p in parts), "answered": sum(p["answered"] for p in parts),
            "lost": sum(p["lost"] for p in parts), "statuses": statuses,
            "first_failure": next((p["first_failure"] for p in parts if p["first_failure"]), None),
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def serve_config(alpha_url: str, beta_url: str, models: dict | None = None) -> dict:
    cfg = {"backends": [{"name": "alpha", "base_url": alpha_url, "model": "a", **ALPHA},
                        {"name": "beta", "base_url": beta_url, "model": "b", "timeout_s": 2.0, "max_retries": 1}],
           "resilience": RESILIENCE, "auth": {"api_keys_env": None}, "server": {"torch_threads": 1}}
    return {**cfg, **(models or {})}


def run_fault(fault: str, args, tmp: Path, prompts: list[str], models: dict) -> dict:
    with ExitStack() as stack:
        if fault == "all_down":
            alpha_url = beta_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
        else:
            mode = "ok" if fault == "poison" else fault
            alpha = stack.enter_context(FaultBackend("alpha", mode, trickle_s=1.0, flap_s=0.25))
            beta = stack.enter_context(FaultBackend("beta"))
            alpha_url, beta_url = alpha.url, beta.url
        url = stack.enter_context(rewardroute_serve(serve_config(alpha_url, beta_url, models if fault == "poison"
                                                                 else None), tmp, f"faults-{fault}"))
        n, clients = args.requests, args.clients
        t0 = time.perf_counter()
        if fault != "poison":
            stats = asyncio.run(run_load(url, "/v1/chat/completions", [chat_body(p) for p in prompts[:n]], clients))
            good, bad = stats, None
        else:
            bad_clients = max(1, clients // 4)
            good_chat = [chat_body(p) for p in prompts[: n // 2]]
            good_rewards = [reward_body(p, "An answer.") for p in prompts[n // 2: n - n // 4]]
            poisoned = [POISON[i % len(POISON)] for i in range(n // 4)]

            async def mixed():
                rest = clients - bad_clients
                return await asyncio.gather(run_load(url, "/v1/chat/completions", good_chat, rest - rest // 2),
                                            run_load(url, "/v1/rewards", good_rewards, rest // 2),
                                            run_poison(url, poisoned, bad_clients))

            chat_stats, reward_stats, bad = asyncio.run(mixed())
            good = merge([chat_stats, reward_stats])
        seconds = time.perf_counter() - t0
    row = {"fault": fault, **summary(good), "seconds": round(seconds, 1)}
    if bad is not None:
        row["poisoned"] = summary(bad)
    return row


async def run_poison(url: str, bodies: list[bytes], clients: int) -> dict:
    """Poisoned bodies go to the endpoint they name (chat or rewards), from `clients` clients."""
    chat = [b for b in bodies if b'"rewardroute"' in b]
    rewards = [b for b in bodies if b'"rewardroute"' not in b]
    half = max(1, clients // 2)
    parts = await asyncio.gather(run_load(url, "/v1/chat/completions", chat, half),
                                 run_load(url, "/v1/rewards", rewards, max(1, clients - half)))
    return merge(list(parts))


COLUMNS = ["sent", "answered", "2xx", "4xx", "5xx", "lost", "p50 ms", "p99 ms"]


def status_rows(res: dict) -> list[tuple[str, str, str, str]]:
    lost = sum(r["lost"] for r in res["faults"])
    faults = [r["fault"] for r in res["faults"]]
    bad_5xx = sum(r["5xx"] for r in res["faults"] if r["fault"] != "all_down")
    return [("proxy under failing backends (" + ", ".join(faults) + f"; {res['clients']} clients)",
             f"{lost} lost; {bad_5xx} 5xx outside all_down", "all_down: every request a 5xx, as it should be",
             "one run per fault, no interval")]


def markdown(res: dict) -> str:
    from rewardroute.eval.report import markdown_table

    def ms(v) -> str:  # no latency when nothing was answered with 2xx (all backends down)
        return "-" if v is None or v != v else str(round(v))

    def cells(r: dict) -> dict:
        return {**{k: r[k] for k in COLUMNS[:6]}, "p50 ms": ms(r["p50_ms"]), "p99 ms": ms(r["p99_ms"])}

    rows = {}
    for r in res["faults"]:
        rows[r["fault"]] = cells(r)
        if "poisoned" in r:
            rows["poison: the poisoned requests"] = cells(r["poisoned"])
    return "\n".join([
        f"**Fault matrix of the proxy** (`{res['command']}`, {res['date']}, {res['machine']['cpus']} CPUs, "
        f"{res['clients']} clients, {res['requests']} requests per fault; alpha timeout_s 2, 1 retry, "
        f"breaker 3 failed attempts / 5 s; load average {res['load_average_1m']}). Lost = no HTTP answer at all.", "",
        markdown_table(rows, first="fault of alpha", columns=COLUMNS),
        "all_down: both backends refuse connections, so 5xx (502/503) is the correct answer. Every other "
        "row counts only good requests: a 5xx there would be a request hurt by a backend fault the proxy "
        "should have routed around, or by another request."])


def main() -> None:
    args = parse()
    res = {"benchmark": "serve_faults", "quick": args.quick, "command": command_line(), "machine": machine(),
           "date": time.strftime("%Y-%m-%d"),
           "clients": args.clients, "requests": args.requests, "alpha": ALPHA, "resilience": RESILIENCE,
           "faults": []}
    prompts = make_prompts(max(args.requests, 64), seed=0)
    with tempfile.TemporaryDirectory(prefix="serve-faults-") as tmp_s:
        tmp = Path(tmp_s)
        models = {}
        if "poison" in args.faults:
            log("building a MiniLM router and reward model for the poison run")
            router = build_router(tmp / "router", prompts)
            models = {"router": {"path": str(router), "experts": {"fast-a": "alpha", "fast-b": "beta"}},
                      "rewards": {"models": [{"name": "rm", "path": str(build_reward_model(tmp / "rm"))}]}}
        for fault in args.faults:
            log(f"fault {fault}")
            row = run_fault(fault, args, tmp, prompts, models)
            log(f"  {json.dumps({k: v for k, v in row.items() if k not in ('statuses', 'poisoned')})}")
            res["faults"].append(row)
    res["load_average_1m"] = round(os.getloadavg()[0], 2)  # the cores are shared: other work inflates latency
    ok = all(r["lost"] == 0 and (r["fault"] == "all_down" or r["5xx"] == 0) for r in res["faults"])
    res["passed"] = ok  # 0 lost anywhere, 0 5xx except where no backend can answer
    publish(args.out, res, None if args.no_results_md or args.quick else markdown(res))
    print(markdown(res), file=sys.stderr)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
