"""`rewardroute router`: the Zooter pipeline, collect -> score -> train -> route / eval."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .common import DeviceOption, PrecisionOption, RoutingPrecisionOption, cli_errors, print_json, runtime_config

app = typer.Typer(help="Reward-guided LLM routing (Zooter): collect, score, train, route, eval.",
                  no_args_is_help=True)


class TagMode(str, Enum):
    field = "field"
    auto = "auto"
    none = "none"


class Method(str, Enum):
    auto = "auto"
    zooter = "zooter"
    regression = "regression"
    mf = "mf"
    knn = "knn"
    zooter_ft = "zooter-ft"


class Norm(str, Enum):
    none = "none"
    minmax = "minmax"
    zscore = "zscore"


def _cache_dir(value: Optional[Path]) -> Path:
    from ..backbone import cache_root
    return value if value is not None else cache_root() / "embeddings"


def _split(values: Optional[list[str]]) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def load_costs(path: Path) -> dict[str, float]:
    """Model -> cost per query from a YAML/JSON mapping, or the prices of a backends file."""
    from ..backends.config import load_backends
    from ..config_overrides import read_yaml
    from ..errors import ConfigError

    data = read_yaml(path, "costs file")
    if isinstance(data, list) or (isinstance(data, dict) and "backends" in data):
        return {b.name: b.cost_per_1k_tokens for b in load_backends(path)}
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
        raise ConfigError(f"{path}: expected a mapping model -> cost, or a backends file")
    return {str(k): float(v) for k, v in data.items()}


# -- collect ------------------------------------------------------------------------------------

@app.command(epilog="""
Examples:

  rewardroute router collect --backends examples/backends.yaml --queries queries.jsonl --out collected.jsonl

  rewardroute router collect --backends b.yaml --queries q.jsonl --out c.jsonl --max-tokens 256 --temperature 0

Queries are routing records ({"id", "query", "tags"}). Each backend is an OpenAI-compatible endpoint (see examples/backends.yaml); API keys are read from the environment variable each backend names. Failed calls are recorded in `errors` and asked again by the next run, which fills only what is missing. OUT.fingerprint.json records the backend set (names, urls, models, prices) and the generation settings; a re-run with others stops with an error naming what differs (--overwrite: start afresh).""")
def collect(
    backends: Annotated[Path, typer.Option(help="YAML/JSON list of backends.")] = ...,
    queries: Annotated[Path, typer.Option(help="Routing records with `id` and `query` (JSONL/CSV/Parquet).")] = ...,
    out: Annotated[Path, typer.Option(help="Output JSONL (written atomically; resumable).")] = ...,
    max_tokens: Annotated[int, typer.Option(help="max_tokens of every request.")] = 512,
    temperature: Annotated[Optional[float], typer.Option(help="Sampling temperature (default: the backend's).")] = None,
    system: Annotated[Optional[str], typer.Option(help="A system prompt added to every query.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed sent with every request.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Only the first N queries.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Start afresh when OUT was collected with other backends or settings.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the counts as JSON on stdout.")] = False,
) -> None:
    """Ask every backend for a response to every query, concurrently, with retries."""
    with cli_errors():
        from ..backends.config import load_backends
        from ..console import console
        from ..zooter.collect import CollectConfig, collect as run_collect

        cfg = CollectConfig(max_tokens=max_tokens, temperature=temperature, system_prompt=system, seed=seed)
        result = run_collect(load_backends(backends), queries, out, cfg, limit=limit, overwrite=overwrite)
        console.print(f"collected {result['requested']} responses for {result['records']} queries "
                      f"({result['failed']} failed) -> {out}", highlight=False)
        if json_:
            print_json(result)


# -- score --------------------------------------------------------------------------------------

@app.command(epilog="""
Examples:

  rewardroute router score --rm runs/rm --input collected.jsonl --out scored.jsonl

  rewardroute router score --rm OpenAssistant/reward-model-deberta-v3-large-v2 --input c.jsonl --out s.jsonl

--rm takes a reward model trained by `rewardroute rm train`, or a Hugging Face sequence-classification reward model (hub id or local path). A re-run after an interruption scores only the records not yet done. OUT carries a fingerprint (OUT.fingerprint.json: input hash, reward-model identity); a re-run with another input or reward model stops with an error naming what differs (--overwrite: start afresh). Under torchrun / accelerate launch each process scores a contiguous shard and the first joins them in input order.""")
def score(
    rm: Annotated[str, typer.Option("--rm", help="Reward-model directory (ours) or Hugging Face id/path.")] = ...,
    input_: Annotated[Path, typer.Option("--input", help="Routing records with `responses`.")] = ...,
    out: Annotated[Path, typer.Option(help="Output JSONL with `scores` filled in.")] = ...,
    batch_size: Annotated[int, typer.Option(help="Responses per forward pass.")] = 32,
    max_length: Annotated[int, typer.Option(help="Tokens per (query, response), Hugging Face models.")] = 512,
    skip_bad: Annotated[bool, typer.Option(help="Skip malformed rows (counted) instead of failing.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Start afresh when OUT was made from another input or reward model.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the counts as JSON on stdout.")] = False,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
) -> None:
    """Fill each record's `scores` with a reward model's rating of every response."""
    with cli_errors():
        from ..console import console
        from ..runtime import running_on
        from ..zooter.score import load_scorer, score_records

        runtime = runtime_config(device, precision)
        scorer = load_scorer(rm, max_length=max_length, precision=precision)
        with running_on(scorer.model, runtime):
            result = score_records(scorer, input_, out, batch_size=batch_size, skip_bad=skip_bad, overwrite=overwrite)
        console.print(f"scored {result['responses_scored']} responses of {result['records']} records -> {out}",
                      highlight=False)
        if json_:
            print_json(result)


# -- train --------------------------------------------------------------------------------------

def read_table(path: Path, models: list[str] | None, strict: bool):
    """Routing records with a score for every model. Missing scores: skipped and counted, or
    (strict) an error naming file:line."""
    from ..console import console
    from ..data.readers import iter_raw, read_routing
    from ..zooter.labels import score_table

    records = read_routing(path)
    lines = [ln for ln, raw in iter_raw(path)]
    table = score_table(records, models, strict=strict, path=path, lines=lines if len(lines) == len(records) else None)
    if table.skipped:
        console.print(f"[yellow]skipped {table.skipped} of {len(records)} records[/] in {path} that lack a score "
                      f"for some model (use --strict to fail instead); first: {table.skipped_examples[0]}",
                      highlight=False)
    return table


@app.command(epilog="""
Examples:

  rewardroute router train --data scored.jsonl --out runs/zooter

  rewardroute router train --data data/routing/alpaca_eval_57.jsonl --out runs/z57 --temperature 0.05 --beta 0.3

  rewardroute router train --data scored.jsonl --out runs/z --tags auto --auto-k 16

  rewardroute router train --data scored.jsonl --out runs/z-hard --hard   # the paper's hard-label ablation

  rewardroute router train --data scored.jsonl --out runs/mf --method mf

--method: zooter (KL head on soft labels + kNN, the paper's), regression (ridge on every model's score), mf (model embeddings x query projection, fitted on every model's score), knn, zooter-ft (zooter without kNN, then the encoder's top layers fine-tuned with the same loss; the epoch, or no fine-tuning at all, chosen on a held-out fifth of the training queries; never picked by auto); auto (default) picks the method, its settings, the candidate count and the abstain-to-best-single margin with the best inner-CV mean routed score on the training data; if that winner's out-of-fold gain over best-single is under one standard error, every query goes to best-single (--set guard_se=... to change). Labels (zooter): s(q) = softmax(minmax(scores) / T); with tags, s*(q) = beta*s(q) + (1-beta)*mean of s over queries sharing a tag. --tags auto clusters the query embeddings with k-means (default k about one cluster per 40 queries, 2..32). The head's L2 penalty and the kNN mix are chosen by inner cross-validation unless given. Records missing a score for some model are skipped and counted (--strict: fail with file:line).""")
def train(
    data: Annotated[Path, typer.Option(help="Scored routing records.")] = ...,
    out: Annotated[Path, typer.Option(help="Output router directory.")] = ...,
    method: Annotated[Optional[Method], typer.Option(help="zooter, regression, mf, knn, or auto (the default): the "
                                                          "one that wins inner CV on the training data; or zooter-ft "
                                                          "(the encoder's top layers fine-tuned too).")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Softmax temperature on min-max scaled scores.")] = None,
    beta: Annotated[Optional[float], typer.Option(help="Tag-enhancement weight of the query's own label (1 = no tags).")] = None,
    tags: Annotated[Optional[TagMode], typer.Option(help="field: the records' tags; auto: k-means clusters; none.")] = None,
    auto_k: Annotated[Optional[int], typer.Option(help="k of k-means for --tags auto.")] = None,
    hard: Annotated[bool, typer.Option("--hard", help="Hard labels (one-hot on the best model).")] = False,
    normalize: Annotated[Optional[Norm], typer.Option(help="Score scaling before the softmax.")] = None,
    models: Annotated[Optional[list[str]], typer.Option(help="Route among these models (comma list; default all).")] = None,
    candidates: Annotated[Optional[int], typer.Option(help="Keep the N best models (training mean) as targets.")] = None,
    head_l2: Annotated[Optional[float], typer.Option(help="L2 penalty on the head (default: inner CV).")] = None,
    knn_weight: Annotated[Optional[float], typer.Option(help="Weight of the kNN estimate in [0,1] (default: inner CV).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Head training epochs.")] = None,
    backbone: Annotated[Optional[str], typer.Option(help="Encoder: alias, hub id or path (default all-MiniLM-L6-v2).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.")] = None,
    strict: Annotated[bool, typer.Option(help="Fail on a record missing a score instead of skipping it.")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Embedding cache (default $REWARDROUTE_CACHE/embeddings).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML/JSON ZooterConfig; flags win over it.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override one setting: key.sub=value.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the training report as JSON on stdout.")] = False,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
) -> None:
    """Train a router over the scored models (--method; default: the inner-CV winner)."""
    with cli_errors():
        from ..config_overrides import apply_flags, apply_overrides, load_config_file, validate_settings
        from ..console import console
        from ..fingerprint import data_identity
        from ..runtime import is_main_process
        from ..zooter.train import train_zooter
        from ..zooter.zooter_config import ZooterConfig

        cfg: dict[str, Any] = apply_overrides(load_config_file(config), set_)
        if "method" not in cfg:
            cfg["method"] = Method.auto.value
        apply_flags(cfg, {
            "labels.temperature": temperature, "labels.beta": beta, "labels.auto_k": auto_k,
            "labels.tags": tags.value if tags is not None else None,
            "labels.normalize": normalize.value if normalize is not None else None,
            "labels.hard": True if hard else None, "method": method.value if method is not None else None,
            "candidates": candidates, "head_l2": head_l2, "knn_weight": knn_weight, "seed": seed,
            "strict": True if strict else None, "models": _split(models) or None,
            "backbone.name_or_path": backbone, "training.epochs": epochs})
        zcfg = validate_settings(ZooterConfig, cfg)
        table = read_table(data, zcfg.models, zcfg.strict)
        zr, report = train_zooter(table, zcfg, cache_dir=_cache_dir(cache_dir), train_data=data_identity(data),
                                  runtime=runtime_config(device, precision))
        if is_main_process():  # under a multi-process launch every process fitted the same router
            zr.save(out)
        console.print(f"saved router over {len(report.experts)} models to {out} ({report.n_train} queries, "
                      f"{report.skipped} skipped; method={report.method} {report.params}, candidates={report.candidates}, "
                      f"abstain_margin={report.abstain_margin:g}; "
                      f"{report.seconds:.1f}s)", highlight=False)
        if json_:
            print_json(report.as_dict())


# -- route --------------------------------------------------------------------------------------

@app.command(epilog="""
Examples:

  rewardroute router route --router runs/zooter --query "Write a haiku about autumn"

  rewardroute router route --router runs/zooter --query "2+2?" --only gpt-4,mixtral --json

  rewardroute router route --router runs/zooter --query "..." --lambda 0.2 --costs examples/backends.yaml

  rewardroute router route --router runs/gsm8k --query "..." --strong-share 0.3   # 2 models

--lambda picks argmax over models of p(model) - lambda * cost / (max cost): lambda = 0.1 gives up 0.1 of probability for the whole price range. --strong-share (routers over 2 models) sends the query to the stronger model when p(strong) is above the threshold that routes that share of the training queries there.""")
def route(
    router: Annotated[Path, typer.Option(help="Router directory from `router train`.")] = ...,
    query: Annotated[list[str], typer.Option(help="A query (repeat for several).")] = ...,
    only: Annotated[Optional[list[str]], typer.Option(help="Route among these models only (comma list).")] = None,
    lam: Annotated[float, typer.Option("--lambda", help="Cost weight: argmax p(model) - lambda*cost/max cost.")] = 0.0,
    costs: Annotated[Optional[Path], typer.Option(help="Model costs: a mapping file or a backends file.")] = None,
    strong_share: Annotated[Optional[float], typer.Option(help="2 models: send about this share of queries to the "
                                                                  "strong one (threshold from the training queries).")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Embedding cache directory.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="One JSON object per query on stdout.")] = False,
    device: DeviceOption = "auto",
    precision: RoutingPrecisionOption = "fp32",
) -> None:
    """Print the model chosen for each query and the router's distribution."""
    with cli_errors():
        import numpy as np

        from ..console import console
        from ..errors import ConfigError
        from ..router.policy import PolicySpec, cost_vector, rank
        from ..zooter.route import ZooterRouter

        zr = ZooterRouter.load(router)
        allowed = _split(only) or zr.experts
        zr.check_models(allowed)
        mask = np.array([m in allowed for m in zr.experts])
        cost_map = load_costs(costs) if costs is not None else zr.state.costs
        if lam > 0 and not cost_map:
            raise ConfigError("--lambda needs costs: give --costs, or train on records with `costs`")
        cvec = None
        if lam > 0:
            cost_vector(allowed, cost_map)  # every allowed model needs a price
            cvec = np.array([cost_map.get(m, 0.0) for m in zr.experts])
        policy, threshold = PolicySpec("cost_aware", lam) if lam > 0 else PolicySpec("argmax"), None
        if strong_share is not None:
            strong, t = zr.strong_threshold(strong_share)
            policy, threshold = PolicySpec("threshold", share=strong_share), (zr.experts.index(strong), t)
        probs = zr.probs(query, _cache_dir(cache_dir), runtime_config(device, precision, int8=True))
        for q, p in zip(query, probs):
            idx = rank(np.where(mask, p, -np.inf), policy, cvec, threshold)[0]
            dist = {m: float(v) for m, v in sorted(zip(zr.experts, p), key=lambda t: -t[1])}
            if json_:
                print_json({"query": q, "model": zr.experts[idx], "probs": dist})
            else:
                console.print(f"[bold]{zr.experts[idx]}[/]  <- {q[:80]!r}", highlight=False)
                for m, v in list(dist.items())[:10]:
                    console.print(f"  {v:6.3f}  {m}", highlight=False)


# -- eval ---------------------------------------------------------------------------------------

@app.command("eval", epilog="""
Examples:

  rewardroute router eval --router runs/zooter --data test.jsonl --json

  rewardroute router eval --router runs/zooter --data judged_test.jsonl --rm-scores rm_scored_test.jsonl \\
      --costs prices.yaml --plot runs/zooter/cost_quality.png --json

best_single is the best model on the router's training data; knn and mlp are trained on that data (--train, default: the file the router was trained on). rmr needs reward-model scores of the test responses (--rm-scores) and costs N calls per query. With 2 models the cost curve sweeps a threshold on p(strong); with more it sweeps lambda in argmax p - lambda*cost (needs costs: --costs, or `costs` in the records).""")
def eval_(
    router: Annotated[Path, typer.Option(help="Router directory from `router train`.")] = ...,
    data: Annotated[Path, typer.Option(help="Test routing records with the scores to evaluate on.")] = ...,
    train_data: Annotated[Optional[Path], typer.Option("--train", help="Training records for knn/mlp.")] = None,
    rm_scores: Annotated[Optional[Path], typer.Option(help="Records scored by a reward model (for rmr).")] = None,
    costs: Annotated[Optional[Path], typer.Option(help="Model costs: a mapping file or a backends file.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Cost-quality curve PNG (default: ROUTER/eval_cost_quality.png).")] = None,
    strict: Annotated[bool, typer.Option(help="Fail on a record missing a score instead of skipping it.")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Embedding cache directory.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
) -> None:
    """Router vs best_single, oracle, random, knn, mlp and rmr, with MTR, uplift, APGR, CPT, AUC, AIQ."""
    with cli_errors():
        import numpy as np

        from ..console import console
        from ..errors import ConfigError
        from ..fingerprint import check_same_data
        from ..zooter.evaluate import evaluate
        from ..zooter.route import ZooterRouter

        zr = ZooterRouter.load(router)
        models = zr.state.models
        test = read_table(data, models, strict)
        if not test.records:
            raise ConfigError(f"{data}: no record has a score for every model of the router ({len(models)} models)")
        cache, runtime = _cache_dir(cache_dir), runtime_config(device, precision)
        test_emb = zr.embed([r.query for r in test.records], cache, runtime)
        train = train_emb = None
        if train_data is not None:
            check_same_data(train_data, zr.state.train_data)
            train = read_table(train_data, models, False)
            train_emb = zr.embed([r.query for r in train.records], cache, runtime)
        else:
            console.print("[yellow]knn and mlp are left out[/]: give --train (the router's training records)")
        reward = None
        if rm_scores is not None:
            scored = {r.id: r for r in read_table(rm_scores, models, False).records}
            missing = [r.id for r in test.records if r.id not in scored]
            if missing:
                raise ConfigError(f"{rm_scores}: no reward scores for {len(missing)} test records (e.g. id {missing[0]})")
            reward = np.array([[scored[r.id].scores[m] for m in models] for r in test.records])
        result, curve = evaluate(zr, test, test_emb, train=train, train_emb=train_emb, reward_scores=reward,
                                 costs=load_costs(costs) if costs is not None else None)
        plot = plot or router / "eval_cost_quality.png"
        if curve is not None:
            from ..eval.routing_plots import cost_quality_plot
            points = {m: (p["cost"], p["quality"]) for m, p in result["cost_curve"]["models"].items()}
            refs = {"best single (train)": result["mean_score"]["best_single"], "oracle": result["mean_score"]["oracle"]}
            cost_quality_plot({"router": (curve.cost.tolist(), curve.quality.tolist())}, plot, points=points,
                              references=refs,
                              xlabel="share of strong-model calls" if curve.kind == "threshold" else "cost per query",
                              title=f"cost-quality ({curve.kind} sweep)")
            console.print(f"cost-quality curve -> {plot}", highlight=False)
        else:
            console.print("[yellow]no cost curve: it needs 2 models, or costs (--costs, or `costs` in the records)[/]")
        if json_:
            print_json(result)
        else:
            _print_eval(result)


def _print_eval(result: dict) -> None:
    from rich.table import Table

    from ..console import console

    table = Table(title=f"routing on {result['n']} queries, {len(result['models'])} models")
    for col in ("method", "mean score", "gap recovered", "MTR", "uplift"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, v in result["mean_score"].items():
        if v is None:
            continue
        g = result["gap_recovered_by_method"].get(name)
        table.add_row(name, f"{v:.4f}", "-" if g is None else f"{g:.3f}",
                      f"{result['mtr'][name]:.2f}" if result.get("mtr") and name in result["mtr"] else "-",
                      f"{result['uplift'][name]:.2f}" if result.get("uplift") and name in result["uplift"] else "-")
    console.print(table)
    for key in ("apgr", "cpt50", "cpt80", "auc", "aiq"):
        if result.get(key) is not None:
            console.print(f"{key}: {result[key]:.4f}", highlight=False)
