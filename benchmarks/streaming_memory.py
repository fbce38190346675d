"""Memory stays flat as the input grows: peak RSS of `rm score`, `router score`, `router collect`
and `data build` at 1k, 10k and 100k rows.

Each command runs in a fresh process on a generated input (preference pairs for `rm score`,
routing records with two responses for `router score`, queries asked of two backends served by
the stub OpenAI server for `router collect`, an HH-RLHF-format source file for `data build`), and
its peak resident memory is read from the kernel when it exits. The reward model is a real `single` checkpoint on a *small random*
BERT (2 layers, 64 wide, MiniLM's tokenizer): what is measured is the I/O path (reading, chunking,
writing, resuming), and a small encoder keeps 100k rows to a couple of minutes on 2 CPUs. The
model's own weights are the same at every size, so a flat curve means the rows are streamed.

    python benchmarks/streaming_memory.py              # 1k, 10k, 100k rows (about 5 min on 2 CPUs)
    python benchmarks/streaming_memory.py --quick      # 200 and 2,000 rows

Prints one JSON object, saves benchmarks/results/streaming_memory.json and a PNG, and writes its
section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib.bench import command_line, machine, publish, results_dir, save_figure

COMMANDS = ("rm score", "router score", "router collect", "data build")


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=None, help="row counts, comma list (default 1000,10000,100000; --quick: 200,2000)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="streaming_memory")
    args = ap.parse_args()
    if args.quick:
        args.out += "_quick"
    args.sizes = args.sizes or ("200,2000" if args.quick else "1000,10000,100000")
    args.size_list = [int(s) for s in args.sizes.split(",") if s.strip()]
    return args


def tiny_reward_model(folder: Path) -> Path:
    """A `single` checkpoint on a 2-layer random BERT with MiniLM's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from rewardroute.backbone import BackboneConfig, resolve
    from rewardroute.reward.checkpoint import save_model
    from rewardroute.reward.reward_trainer import build_for_training
    from rewardroute.reward.single import SingleConfig, SingleRewardModel

    tok = AutoTokenizer.from_pretrained(resolve(BackboneConfig())[0])  # the default backbone's tokenizer
    enc = folder / "tiny-bert"
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=128)).save_pretrained(enc)
    tok.save_pretrained(enc)
    model = build_for_training(SingleRewardModel, SingleConfig(backbone=BackboneConfig(name_or_path=str(enc),
                                                                                       max_length=64)), seed=0)
    save_model(model, folder / "rm")
    return folder / "rm"


def write_inputs(folder: Path, n: int) -> dict[str, Path]:
    """n rows of each command's input, streamed to disk: preference pairs, routing records (two
    responses each), bare queries, and an HH-RLHF-format source (`datasets/` layout)."""
    import gzip

    pairs, records, queries = folder / f"pairs-{n}.jsonl", folder / f"records-{n}.jsonl", folder / f"queries-{n}.jsonl"
    source = folder / f"source-{n}"
    hh = source / "anthropic-hh-rlhf" / "harmless-base-test.jsonl.gz"
    hh.parent.mkdir(parents=True)
    with (open(pairs, "w", encoding="utf-8") as fp, open(records, "w", encoding="utf-8") as fr,
          open(queries, "w", encoding="utf-8") as fq, gzip.open(hh, "wt", encoding="utf-8") as fh):
        for i in range(n):
            q = f"Question {i}: how would you explain topic {i % 977} to a new colleague?"
            a, b = f"A careful answer about topic {i % 977}, step by step.", f"Short reply {i}."
            fp.write(json.dumps({"id": f"p{i}", "prompt": q, "chosen": a, "rejected": b, "domain": "chat"}) + "\n")
            fr.write(json.dumps({"id": f"r{i}", "query": q, "responses": {"m1": a, "m2": b}}) + "\n")
            fq.write(json.dumps({"id": f"q{i}", "query": q}) + "\n")
            fh.write(json.dumps({"chosen": f"\n\nHuman: {q}\n\nAssistant: {a}",
                                 "rejected": f"\n\nHuman: {q}\n\nAssistant: {b}"}) + "\n")
    return {"rm score": pairs, "router score": records, "router collect": queries, "data build": source}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stub_backends(folder: Path):
    """A stub OpenAI server (benchlib/stub_backend.py) and a backends file naming it twice."""
    import httpx

    port = free_port()
    server = subprocess.Popen([sys.executable, str(Path(__file__).parent / "benchlib" / "stub_backend.py"),
                               "--port", str(port), "--name", "stub"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(100):
        try:
            httpx.get(f"{url}/models", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    path = folder / "backends.json"
    path.write_text(json.dumps({"backends": [{"name": name, "base_url": url, "model": name, "max_concurrency": 32}
                                             for name in ("m1", "m2")]}))
    return server, path


def rows_written(name: str, out: Path) -> int:
    files = sorted((out / "prefs").glob("*.jsonl")) if name == "data build" else [out]
    total = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            total += sum(1 for _ in f)
    return total


# Runs `python -m rewardroute ARGS` and, at exit, writes the process's own peak RSS (VmHWM) to
# $HWM_FILE. Not wait4's ru_maxrss: on Linux that also counts the memory of the parent the child
# was forked from (this benchmark's, with torch loaded), which would floor every figure.
_MEASURED = """
import atexit, os, runpy, sys
def _hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(os.environ["HWM_FILE"], "w").write(line.split()[1])
atexit.register(_hwm)
sys.argv = ["rewardroute", *sys.argv[1:]]
runpy.run_module("rewardroute", run_name="__main__", alter_sys=True)
"""


def run_measured(cmd: list[str]) -> dict[str, Any]:
    """Run `cmd` (`python -m rewardroute ...`) to the end; its wall time and peak RSS (MB)."""
    with tempfile.TemporaryDirectory() as tmp:
        hwm = Path(tmp) / "hwm"
        env = dict(os.environ, TOKENIZERS_PARALLELISM="false", HWM_FILE=str(hwm))
        t0 = time.perf_counter()
        proc = subprocess.run([cmd[0], "-c", _MEASURED, *cmd[3:]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env=env)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.decode(errors='replace')[-3000:]}")
        return {"peak_rss_mb": round(int(hwm.read_text()) / 1024, 1), "seconds": round(seconds, 2)}


def command_for(name: str, rm: Path, inp: Path, out: Path, backends: Path) -> list[str]:
    base = [sys.executable, "-m", "rewardroute"]
    if name == "rm score":
        return [*base, "rm", "score", "--model", str(rm), "--input", str(inp), "--out", str(out), "--device", "cpu"]
    if name == "router collect":
        return [*base, "router", "collect", "--backends", str(backends), "--queries", str(inp), "--out", str(out)]
    if name == "data build":
        return [*base, "data", "build", "--source", str(inp), "--out", str(out), "--domains", "safety", "--no-routing"]
    return [*base, "router", "score", "--rm", str(rm), "--input", str(inp), "--out", str(out), "--device", "cpu"]


def status_rows(out: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    if out.get("name", "streaming_memory") != "streaming_memory":
        return []
    return [(f"peak RSS of `{c}` from {g['from']:,} to {g['to']:,} rows", f"{g['mb']:+.0f} MB",
             f"{out['results'][c][str(g['from'])]['peak_rss_mb']:.0f} MB at {g['from']:,} rows",
             "one measurement each") for c, g in out["growth"].items()]


def markdown(out: dict[str, Any]) -> str:
    from rewardroute.eval.report import markdown_table

    rows = {f"{c}, {n:,} rows": {"peak RSS (MB)": f"{r['peak_rss_mb']:.0f}", "seconds": f"{r['seconds']:.1f}",
                                 "rows/s (incl. start-up)": f"{n / r['seconds']:.0f}"}
            for c in COMMANDS for n, r in ((int(k), v) for k, v in out["results"][c].items())}
    growth = "; ".join(f"{c}: {out['growth'][c]['mb']:+.0f} MB from {out['growth'][c]['from']:,} to "
                       f"{out['growth'][c]['to']:,} rows" for c in COMMANDS)
    return (f"## Streaming: memory as the input grows (`{out['name']}`)\n\n"
            f"`{out['command']}` — each command in a fresh process on generated rows; the scoring commands use a "
            f"`single` reward model on a 2-layer random BERT (the I/O path is measured, not the encoder), `router "
            f"collect` asks two backends of a local stub OpenAI server, `data build` reads one HH-RLHF-format source. "
            f"Peak RSS growth: {growth}.\n\n"
            + markdown_table(rows, first="command", columns=["peak RSS (MB)", "seconds", "rows/s (incl. start-up)"]) + f"\n![peak RSS]({Path('results') / out['png']})\n")


def plot(out: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for c in COMMANDS:
        sizes = sorted(int(k) for k in out["results"][c])
        ax.plot(sizes, [out["results"][c][str(n)]["peak_rss_mb"] for n in sizes], marker="o", label=c)
    ax.set_xscale("log")
    ax.set_xlabel("input rows")
    ax.set_ylabel("peak RSS (MB)")
    top = max(r["peak_rss_mb"] for c in COMMANDS for r in out["results"][c].values())
    ax.set_ylim(0, top * 1.3)
    ax.set_title("Peak memory vs input size")
    ax.legend(loc="lower right")
    return save_figure(fig, path)


def main() -> None:
    args = parse()
    t0 = time.perf_counter()
    results: dict[str, dict[str, Any]] = {c: {} for c in COMMANDS}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rm = tiny_reward_model(tmp)
        server, backends = stub_backends(tmp)
        try:
            for n in args.size_list:
                inputs = write_inputs(tmp, n)
                for c in COMMANDS:
                    out_file = tmp / f"out-{c.replace(' ', '-')}-{n}" / ("" if c == "data build" else "out.jsonl")
                    out_file.parent.mkdir(parents=True, exist_ok=True)
                    results[c][str(n)] = run_measured(command_for(c, rm, inputs[c], out_file, backends))
                    results[c][str(n)]["rows_out"] = rows_written(c, out_file)
                    if results[c][str(n)]["rows_out"] != n:
                        raise SystemExit(f"{c} wrote {results[c][str(n)]['rows_out']} rows for {n}")
                    print(f"{c}: {n} rows, {results[c][str(n)]}", file=sys.stderr, flush=True)
        finally:
            server.terminate()
            server.wait()
    lo, hi = min(args.size_list), max(args.size_list)
    out = {"benchmark": "streaming_memory", "name": args.out, "sizes": args.size_list, "results": results,
           "growth": {c: {"from": lo, "to": hi, "mb": results[c][str(hi)]["peak_rss_mb"]
                          - results[c][str(lo)]["peak_rss_mb"]} for c in COMMANDS},
           "total_seconds": time.perf_counter() - t0, "command": command_line(), "machine": machine()}
    out["png"] = plot(out, results_dir() / f"{args.out}.png").name
    publish(args.out, out, None if args.quick else markdown(out))


if __name__ == "__main__":
    main()
