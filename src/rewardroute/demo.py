"""The main job on the shipped defaults (`make demo`), run as the CLI commands a user would type.

1. `data build`: the public sources into preference pairs and routing tables (when missing).
2. `rm train` + `rm eval`: the baseline reward model (`single`) and ARLISS (one frozen backbone,
   LoRA router and per-domain reward adapters) on a small mixed-domain budget, each with its
   test accuracy per domain beside the "longer response wins" heuristic.
3. `router train` + `router eval` + `router route`: a Zooter router over the 57 AlpacaEval
   models (judge win-probabilities as rewards), against best-single, kNN, MLP, random and
   the oracle on held-out instructions.
Every setting is a field of `DemoConfig`; each step prints the command it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .console import console


class DemoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Path = Path("data")
    out: Path = Path("runs/demo")
    archs: list[str] = Field(default_factory=lambda: ["single", "arliss"], min_length=1)
    backbone: str = "all-MiniLM-L6-v2"
    max_length: int = Field(default=192, ge=16)
    epochs: int = Field(default=2, ge=1)
    lr: float = Field(default=1e-4, gt=0)
    train_per_domain: int = Field(default=120, ge=1)
    valid_per_domain: int = Field(default=20, ge=1)
    test_per_domain: int = Field(default=60, ge=1)
    routing_table: str = "alpaca_eval_57"
    serve_port: int = Field(default=8000, ge=1, le=65535)  # in the serve.yaml the demo writes
    queries: list[str] = Field(default_factory=lambda: [
        "Write a Python function that checks whether a string is a palindrome.",
        "What are some tips for a first trip to Japan?",
    ])


RunCommand = Callable[[list[str]], None]  # runs one `rewardroute` command line (the CLI passes its own)


def run_demo(cfg: DemoConfig, run_cli: RunCommand) -> None:
    from .data.ensure import ensure_built

    if not (cfg.data / "prefs" / "train.jsonl").exists():
        console.rule("[bold]1. data")
        ensure_built(cfg.data)
    slices = write_slices(cfg)

    for arch in cfg.archs:
        console.rule(f"[bold]2. reward model: {arch}")
        rm_dir = cfg.out / f"rm-{arch}"
        run_cli(["rm", "train", "--arch", arch, "--train", str(slices["train"]), "--valid", str(slices["valid"]),
                 "--out", str(rm_dir), "--backbone", cfg.backbone, "--max-length", str(cfg.max_length),
                 "--epochs", str(cfg.epochs), "--lr", str(cfg.lr)])
        # the baselines are fitted on the whole train split (never the test pairs), as a sceptic would
        run_cli(["rm", "eval", "--model", str(rm_dir), "--data", str(slices["test"]),
                 "--baselines-train", str(cfg.data / "prefs" / "train.jsonl"),
                 "--plot", str(cfg.out / f"rm-{arch}-accuracy.png")])

    console.print(f"These models saw {cfg.train_per_domain} pairs per domain, a budget that fits a few CPU minutes; "
                  "the lines above say whether each beat the best baseline on these test pairs (it often does not "
                  "at this size). Every architecture with 3 seeds and intervals: benchmarks/rm_domains.py; the "
                  "effect of more data: benchmarks/rm_learning_curve.py (results in benchmarks/RESULTS.md).",
                  highlight=False)

    console.rule("[bold]3. Zooter: route each query to one of the LLMs")
    router_dir = cfg.out / f"zooter-{cfg.routing_table}"
    run_cli(["router", "train", "--data", str(slices["route_train"]), "--out", str(router_dir)])
    run_cli(["router", "eval", "--router", str(router_dir), "--data", str(slices["route_test"]),
             "--train", str(slices["route_train"])])
    run_cli(["router", "route", "--router", str(router_dir), *[a for q in cfg.queries for a in ("--query", q)]])
    serve_yaml = write_serve_config(cfg, [cfg.out / f"rm-{arch}" for arch in cfg.archs])
    console.print(f"[bold green]done.[/] models and charts in {cfg.out}. Serve the reward models:", highlight=False)
    console.print(f"  rewardroute serve --config {serve_yaml}\n  curl -s localhost:{cfg.serve_port}/v1/rewards "
                  f"-H 'content-type: application/json' -d '{{\"model\": \"{cfg.archs[0]}\", \"input\": "
                  f"[{{\"prompt\": \"2+2?\", \"response\": \"4\"}}]}}'", highlight=False, markup=False)


def write_serve_config(cfg: DemoConfig, rm_dirs: list[Path]) -> Path:
    """`serve.yaml` for what the demo trained: its reward models behind /v1/rewards. The demo has no
    LLM endpoints to route to, so the routing proxy is left for the user's own backends."""
    import yaml

    from .io import write_text_atomic

    path = cfg.out / "serve.yaml"
    body = {"server": {"port": cfg.serve_port},
            "rewards": {"models": [{"name": d.name.removeprefix("rm-"), "path": d.name} for d in rm_dirs]}}
    write_text_atomic(path, "# Written by `rewardroute demo`. Add `backends:` and `router.path: zooter-...` to route\n"
                            "# chats to your own OpenAI-compatible LLM endpoints (see examples/serve.yaml).\n"
                      + yaml.safe_dump(body, sort_keys=False))
    return path


def write_slices(cfg: DemoConfig) -> dict[str, Path]:
    """Capped per-domain pair files and a hash split of the routing table, under `cfg.out`."""
    from .data.readers import read_pairs, read_routing
    from .data.schemas import render_prompt
    from .data.split import split_of
    from .io import write_jsonl_atomic
    from .data.sampling import cap_per_domain

    out: dict[str, Path] = {}
    caps = {"train": cfg.train_per_domain, "valid": cfg.valid_per_domain, "test": cfg.test_per_domain}
    for split, cap in caps.items():
        by = cap_per_domain(read_pairs(cfg.data / "prefs" / f"{split}.jsonl"), cap, seed=0)
        out[split] = cfg.out / f"pairs-{split}.jsonl"
        write_jsonl_atomic(out[split], [p for d in sorted(by) for p in by[d]])
    records = read_routing(cfg.data / "routing" / f"{cfg.routing_table}.jsonl")
    # the same hash split as the pairs: train+valid instructions train the router, test ones judge it
    out["route_train"] = cfg.out / "routing-train.jsonl"
    out["route_test"] = cfg.out / "routing-test.jsonl"
    write_jsonl_atomic(out["route_train"], [r for r in records if split_of(render_prompt(r.query)) != "test"])
    write_jsonl_atomic(out["route_test"], [r for r in records if split_of(render_prompt(r.query)) == "test"])
    return out
