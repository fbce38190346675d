"""Zooter routing on real multi-model data, every number beside its baselines.

1. AlpacaEval, 57 models: judge win-probabilities (vs gpt4_1106_preview) are the rewards.
   5-fold cross-validation over the 805 instructions, the AlpacaEval subset as tag. The router
   (frozen MiniLM, tag-enhanced soft labels, KL loss, head L2 and kNN mix by inner CV) against
   best_single (chosen on the training folds), kNN and MLP on the same embeddings, random and
   oracle. Mean over folds, a 95% t-interval over folds and the count of folds behind each
   figure (a metric undefined in a fold is counted, never dropped silently).
2. AlpacaEval, 10 models, true Zooter: the rewards come from our own reward model (`single`,
   MiniLM), trained on the safety, math, code and summarization pairs only (no chat pairs, so
   no AlpacaEval instruction is ever seen); the router learns from those rewards and is judged
   with the judge's win-probabilities. gpt4_1106_preview is left out (the judge's reference:
   a constant 0.5). rmr (reward-model ranking) generates with all 10 models: 10x the cost.
   Cost-aware routing sweeps lambda with cost = the model's mean answer length in tokens
   (one price per token: a stand-in for real prices, which this data lacks). best_single is
   the model the reward model rates best on the training folds (the signal the router learns
   from); the judge's own pick on the training folds is a separate reference row.
3. GSM8K, 2 models (GPT-4 vs Mixtral, RouteLLM's data): the threshold curve, APGR, CPT and AUC.
4. The paper's ablation on AlpacaEval-57: beta in {0, 0.1, 0.3, 0.5, 1} and hard labels (the
   head alone, no kNN mix, so that only the labels change).

Prints one JSON object, saves it to benchmarks/results/routing.json, writes tables into
benchmarks/RESULTS.md between <!-- routing:start --> and <!-- routing:end --> and PNGs into
benchmarks/results/.

    python benchmarks/routing.py            # the full run (about 30 min on 2 busy cores)
    python benchmarks/routing.py --quick    # a smoke run on small subsets (results *_quick)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardroute.backbone import Backbone, BackboneConfig
from benchlib.bench import command_line, machine, peak_rss_mb, publish, results_dir
from rewardroute.console import console
from rewardroute.data.ensure import ensure_built
from rewardroute.data.readers import read_pairs, read_routing
from rewardroute.data.schemas import RoutingRecord, last_user_turn, render_prompt
from rewardroute.data.split import bucket_of
from rewardroute.eval import routing_metrics as rm
from rewardroute.eval.folds import fmt, fold_stats, paired_diff, verdict as claim
from rewardroute.fingerprint import (code_identity, file_sha256, guard_output, rows_sha256, settings_value,
                                     short_key)
from rewardroute.eval.routing_plots import bar_plot, cost_quality_plot
from rewardroute.io import write_jsonl_atomic
from rewardroute.router import ExpertRouter, RouterConfig
from rewardroute.router.embedding_cache import cached_embed
from rewardroute.zooter.baselines import best_single_index
from rewardroute.zooter.evaluate import evaluate
from rewardroute.zooter.labels import ScoreTable, score_table
from rewardroute.zooter.route import KnnMemory, unit_rows
from rewardroute.zooter.train import kfold, quiet_console, train_zooter
from rewardroute.zooter.zooter_config import LabelConfig, ZooterConfig

REFERENCE = "gpt4_1106_preview"
RM_DOMAINS = ("safety", "math", "code", "summarization")  # every domain but chat (AlpacaEval-derived)
METHODS = ("router", "best_single", "knn", "mlp", "random", "oracle", "rmr")


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data"), help="built data folder (built if missing)")
    ap.add_argument("--work", type=Path, default=Path("runs/routing_bench"),
                    help="embedding cache, reward model and scored files (reused by later runs)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the routing parts")
    ap.add_argument("--rm", type=Path, default=None, help="an existing reward model for true Zooter")
    ap.add_argument("--rm-pairs", type=int, default=600, help="training pairs of the reward model")
    ap.add_argument("--rm-epochs", type=int, default=1)
    ap.add_argument("--rm-max-length", type=int, default=128)
    ap.add_argument("--rm-threads", type=int, default=2)
    ap.add_argument("--rm-chat-share", type=float, default=0.3,
                    help="also run true Zooter with an in-domain RM: chat pairs of this share of the "
                         "instructions (by hash), which are then left out of the evaluation (0: skip)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N queries of each table")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: alpaca57,alpaca10,alpaca10_chat,gsm8k,ablation")
    ap.add_argument("--quick", action="store_true", help="small subsets, 2 folds: a smoke run")
    ap.add_argument("--out", default="routing", help="results name and RESULTS.md section")
    ap.add_argument("--no-results-md", action="store_true", help="do not touch benchmarks/RESULTS.md")
    args = ap.parse_args()
    if args.quick:
        args.folds, args.limit = 2, args.limit or 80
        args.out += "_quick"  # never overwrite the real figures
        args.work = args.work.with_name(args.work.name + "_quick")
        if args.rm is None:
            args.skip = ",".join(filter(None, [args.skip, "alpaca10", "alpaca10_chat"]))  # needs a reward model
    args.skip = {s for s in args.skip.split(",") if s}
    return args


# -- helpers ------------------------------------------------------------------------------------

def subset(table: ScoreTable, idx: np.ndarray) -> ScoreTable:
    return ScoreTable([table.records[i] for i in idx], table.models, table.scores[idx])


def limited(records: list[RoutingRecord], limit: int | None) -> list[RoutingRecord]:
    return records[:limit] if limit else records


class Embedder:
    """Frozen MiniLM vectors of query texts through the on-disk cache. The cache is keyed by text
    and backbone settings; its folder adds the backbone's weights, so new weights behind the
    same name never reuse old vectors."""

    def __init__(self, cache: Path):
        from rewardroute.backbone import resolve
        from rewardroute.fingerprint import checkpoint_identity

        self.config = ZooterConfig()
        self.backbone = Backbone.load(self.config.backbone)
        self.probe = ExpertRouter.build(RouterConfig(experts=["_"], backbone=self.config.backbone), self.backbone)
        path, gguf = resolve(self.config.backbone)
        weights = checkpoint_identity(path) if Path(path).is_dir() else f"{path}:{gguf}"
        self.cache = cache / short_key({"backbone_weights": weights})

    def __call__(self, records: list[RoutingRecord]) -> np.ndarray:
        return cached_embed(self.probe, [r.query for r in records], self.cache).numpy()


def summarize_folds(folds: list[dict[str, Any]], reference: str = "best_single") -> dict[str, Any]:
    """Per method, over folds: mean score, gap recovered (against `reference`, recomputed from the
    fold's mean scores), MTR and uplift; and the curve metrics. Each figure is `fold_stats`:
    mean, 95% t-interval and the count of folds where it is defined."""
    out: dict[str, Any] = {"reference": reference}
    gaps = []
    for f in folds:
        ms = f.get("mean_score") or {}
        ref, orc = ms.get(reference), ms.get("oracle")
        gaps.append({m: (rm.gap_recovered(v, ref, orc) if None not in (v, ref, orc) else None) for m, v in ms.items()})
    per_fold = {"mean_score": [f.get("mean_score") or {} for f in folds], "gap_recovered_by_method": gaps,
                "mtr": [f.get("mtr") or {} for f in folds], "uplift": [f.get("uplift") or {} for f in folds]}
    for key, rows in per_fold.items():
        methods = sorted({m for row in rows for m in row})
        out[key] = {m: fold_stats([row.get(m) for row in rows]) for m in methods}
    for key in ("apgr", "cpt50", "cpt80", "auc", "aiq"):
        out[key] = fold_stats([f.get(key) for f in folds])
    return out


def method_diff(folds: list[dict[str, Any]], a: str, b: str, key: str = "mean_score") -> dict[str, Any]:
    """Paired over folds: `a` minus `b` of one per-method metric."""
    return paired_diff([(f.get(key) or {}).get(a) for f in folds], [(f.get(key) or {}).get(b) for f in folds])


def cv_router(table: ScoreTable, emb: np.ndarray, config: ZooterConfig, args, backbone: Backbone, *,
              eval_table: ScoreTable | None = None, costs_fn=None, reward: np.ndarray | None = None,
              baselines: bool = True) -> list[dict[str, Any]]:
    """Outer k-fold CV: train on k-1 folds of `table` (the training rewards), evaluate on the
    held-out fold of `eval_table` (the evaluation scores; default the same table)."""
    eval_table = eval_table or table
    folds = []
    for i, test_idx in enumerate(kfold(len(table.records), args.folds, args.seed)):
        train_idx = np.setdiff1d(np.arange(len(table.records)), test_idx)
        train = subset(table, train_idx)
        zr, report = train_zooter(train, config, backbone=backbone, embeddings=emb[train_idx])
        costs = costs_fn(train_idx) if costs_fn else None
        with quiet_console():
            res, curve = evaluate(zr, subset(eval_table, test_idx), emb[test_idx],
                                  train=train if baselines else None, train_emb=emb[train_idx] if baselines else None,
                                  reward_scores=reward[test_idx] if reward is not None else None, costs=costs,
                                  seed=args.seed)
        res.update(fold=i, head_l2=report.head_l2, knn_weight=report.knn_weight, train_seconds=report.seconds,
                   train_idx=train_idx, test_idx=test_idx)
        res["_curve"] = curve
        folds.append(res)
        console.print(f"  fold {i + 1}/{args.folds}: router {res['mean_score']['router']:.4f} vs best_single "
                      f"{res['mean_score']['best_single']:.4f} (gap recovered {res['gap_recovered']:+.3f}; "
                      f"head_l2={report.head_l2:g}, knn_weight={report.knn_weight:g})", highlight=False)
    return folds


def public(folds: list[dict]) -> list[dict]:
    """Per-fold results without arrays and curves (for the JSON)."""
    keep = ("fold", "n", "mean_score", "gap_recovered", "mtr", "uplift", "apgr", "cpt50", "cpt80", "auc", "aiq",
            "head_l2", "knn_weight", "knn_k", "best_single_model", "best_single_judge_model", "routing_share", "skipped")
    out = []
    for f in folds:
        row = {k: f.get(k) for k in keep}
        row["routing_share"] = {m: v for m, v in (row["routing_share"] or {}).items() if v > 0}
        out.append(row)
    return out


def methods_table(summary: dict[str, Any], note: dict | None = None,
                  fallback: dict[str, str] | None = None) -> str:
    """One row per method: mean score, gap recovered (against the summary's reference), MTR and
    uplift, each with its fold interval and fold count. `fallback`: text for a method whose
    fold values are missing (older results files)."""
    ref = summary.get("reference", "best_single")
    lines = [f"| method | mean score | gap recovered (vs {ref}) | MTR | uplift |", "|---|---|---|---|---|"]
    for m in (*METHODS, "best_single_judge"):
        ms = summary["mean_score"].get(m)
        name = f"{m} ({note[m]})" if note and m in note else m
        if not ms or ms["mean"] is None:
            if fallback and m in fallback:
                lines.append(f"| {name} | {fallback[m]} | | {fmt(summary['mtr'].get(m), 2)} | "
                             f"{fmt(summary['uplift'].get(m), 2)} |")
            elif note and m in note:
                lines.append(f"| {m} | {note[m]} | | | |")
            continue
        lines.append(f"| {name} | {fmt(ms, 4)} | {fmt(summary['gap_recovered_by_method'].get(m))} | "
                     f"{fmt(summary['mtr'].get(m), 2)} | {fmt(summary['uplift'].get(m), 2)} |")
    return "\n".join(lines) + "\n"


# -- 1. AlpacaEval-57 ---------------------------------------------------------------------------

def alpaca57(args, data: Path, embed: Embedder) -> dict[str, Any]:
    records = limited(read_routing(data / "routing" / "alpaca_eval_57.jsonl"), args.limit)
    table = score_table(records)
    emb = embed(table.records)
    console.print(f"[bold]AlpacaEval-57[/]: {len(table.records)} instructions ({table.skipped} skipped: a model "
                  f"lacks a score), {len(table.models)} models")
    folds = cv_router(table, emb, ZooterConfig(), args, embed.backbone)
    return {"n": len(table.records), "skipped": table.skipped, "models": len(table.models),
            "summary": summarize_folds(folds), "folds": public(folds), "_table": table, "_emb": emb,
            "_folds": folds}


def ablation(args, part57: dict[str, Any], embed: Embedder) -> dict[str, Any]:
    table, emb = part57["_table"], part57["_emb"]
    settings: dict[str, ZooterConfig] = {}
    for beta in (0.0, 0.1, 0.3, 0.5, 1.0):
        settings[f"beta={beta:g}"] = ZooterConfig(labels=LabelConfig(beta=beta), knn_weight=0.0)
    settings["hard (beta=1)"] = ZooterConfig(labels=LabelConfig(hard=True, beta=1.0), knn_weight=0.0)
    if args.quick:
        settings = {k: v for k, v in settings.items() if k in ("beta=0.3", "hard (beta=1)")}
    out = {}
    for name, cfg in settings.items():
        console.print(f"[bold]ablation[/] {name}")
        folds = cv_router(table, emb, cfg, args, embed.backbone, baselines=False)
        s = summarize_folds(folds)
        out[name] = {"gap_recovered": s["gap_recovered_by_method"]["router"], "mean_score": s["mean_score"]["router"],
                     "mtr": s["mtr"].get("router"), "uplift": s["uplift"].get("router"),
                     "folds": [f["gap_recovered"] for f in folds],
                     "fold_mean_scores": [f["mean_score"]["router"] for f in folds]}
    return out


# -- 2. AlpacaEval-10, true Zooter --------------------------------------------------------------

def instruction_bucket(text: str) -> int:
    return bucket_of(text.strip())


# The code a cached reward model depends on: a change there trains a new one.
RM_CODE = ("reward", "training", "backbone.py", "tokenization.py", "data/schemas.py")


def train_rm(args, data: Path, tag: str, chat_share: float, evaluated: set[str]) -> dict[str, Any]:
    """Our `single` reward model (`rm train --arch single` in code) on the non-chat domains, plus,
    when `chat_share` > 0, the chat pairs of the AlpacaEval instructions whose hash bucket is below
    chat_share * 100; those instructions are then never evaluated (`evaluated` excludes them).

    Cached in `--work` under a key of everything it depends on (the pairs, the model and
    training settings, the code), so a later run reuses it only when all of these are unchanged."""
    from rewardroute.reward.reward_config import RewardTrainingConfig
    from rewardroute.reward.reward_trainer import train_reward_model
    from rewardroute.reward.single import SingleConfig, SingleRewardModel

    def keep(p) -> bool:
        if p.domain in RM_DOMAINS:
            return True
        return p.domain == "chat" and instruction_bucket(last_user_turn(p.prompt)) < chat_share * 100

    train = [p for p in read_pairs(data / "prefs" / "train.jsonl") if keep(p)]
    valid = [p for p in read_pairs(data / "prefs" / "valid.jsonl") if keep(p)]
    domains = sorted({p.domain for p in train})
    leaked = sum(1 for p in train + valid if last_user_turn(p.prompt).strip() in evaluated)
    cfg = SingleConfig(backbone=BackboneConfig(max_length=args.rm_max_length), domains=domains)
    n_pairs = args.rm_pairs * len(domains) // len(RM_DOMAINS)  # the same budget per domain
    targs = RewardTrainingConfig(epochs=args.rm_epochs, lr=1e-4, batch_size=16, max_pairs=n_pairs,
                                 eval_max_pairs=200, seed=args.seed)
    job = {"train_pairs": rows_sha256(train), "valid_pairs": rows_sha256(valid), "model": settings_value(cfg),
           "training": settings_value(targs, exclude=("checkpoint_every_s", "resume")), "code": code_identity(*RM_CODE)}
    out = args.work / f"{tag}-{short_key(job)}"
    reused = guard_output(out, job, hint=f"remove {out} to train it again")
    if reused:
        from rewardroute.reward.checkpoint import read_reward_meta
        training = read_reward_meta(out).get("extra", {}).get("training", {})
        return {"path": str(out), "reused": True, "domains": domains, "pairs_with_evaluated_instruction": leaked,
                "valid_accuracy": training.get("best_valid_accuracy"), "train_pairs": training.get("train_pairs"),
                "seconds": training.get("seconds")}
    torch.set_num_threads(args.rm_threads)
    console.print(f"[bold]training the reward model[/] on {min(len(train), n_pairs)} pairs of {domains}")
    result = train_reward_model(SingleRewardModel.build(cfg), train, valid, targs, out)
    torch.set_num_threads(args.threads)
    return {"path": str(out), "reused": False, "domains": domains, "valid_accuracy": result.best_metric,
            "seconds": result.seconds, "train_pairs": min(len(train), n_pairs),
            "pairs_with_evaluated_instruction": leaked}


def alpaca10(args, data: Path, embed: Embedder, chat_share: float = 0.0) -> dict[str, Any]:
    """True Zooter; `chat_share` > 0 adds in-domain chat pairs of held-out instructions to the RM."""
    from rewardroute.zooter.score import load_scorer, score_records

    t0 = time.perf_counter()
    source = limited(read_routing(data / "routing" / "alpaca_eval_11.jsonl"), args.limit)
    source = [r for r in source if instruction_bucket(render_prompt(r.query)) >= chat_share * 100]
    evaluated = {render_prompt(r.query).strip() for r in source}
    tag = "rm_nonchat" if chat_share == 0 else f"rm_chat{round(chat_share * 100)}"
    rm_info = train_rm(args, data, tag, chat_share, evaluated) if args.rm is None else {"path": str(args.rm), "reused": True}
    rm_dir = Path(rm_info["path"])
    ten = [r.model_copy(update={"responses": {m: t for m, t in (r.responses or {}).items() if m != REFERENCE},
                                "scores": {m: s for m, s in r.scores.items() if m != REFERENCE}}) for r in source]
    responses = args.work / f"alpaca10_responses_{tag}.jsonl"
    write_jsonl_atomic(responses, ten)
    scorer = load_scorer(rm_dir)
    # keyed by what the scores depend on: the responses file and the reward model's identity
    scored_path = args.work / f"alpaca10_{tag}_scored_{short_key({'input': file_sha256(responses), 'rm': scorer.identity})}.jsonl"
    torch.set_num_threads(args.rm_threads)
    score_info = score_records(scorer, responses, scored_path, batch_size=32)
    torch.set_num_threads(args.threads)
    judge = score_table(ten)
    by_id = {r.id: r for r in read_routing(scored_path)}
    rm_table = score_table([by_id[r.id] for r in judge.records], judge.models)
    assert [r.id for r in rm_table.records] == [r.id for r in judge.records], "every response has an RM score"
    emb = embed(judge.records)
    # cost proxy: answer length in tokens (chars / 4), one price per token, from the training folds
    lengths = np.array([[len(r.responses.get(m, "")) / 4 for m in judge.models] for r in judge.records])

    def costs_fn(train_idx: np.ndarray) -> dict[str, float]:
        return {m: float(v) for m, v in zip(judge.models, lengths[train_idx].mean(axis=0))}

    console.print(f"[bold]AlpacaEval-10, true Zooter[/]: {len(judge.records)} instructions, rewards from {rm_dir}")
    folds = cv_router(rm_table, emb, ZooterConfig(), args, embed.backbone, eval_table=judge, costs_fn=costs_fn,
                      reward=rm_table.scores)
    # best_single is the reward model's pick on the training folds (evaluate() picks it from the
    # router's training table, the same signal the router learns from), so every column of its
    # row describes one model. The judge's pick on the training folds, which no router here can
    # see, is a separate reference row: mean score only.
    for f in folds:
        j = best_single_index(judge.scores[f["train_idx"]])
        f["mean_score"]["best_single_judge"] = float(judge.scores[f["test_idx"]][:, j].mean())
        f["best_single_judge_model"] = judge.models[j]
    summary = summarize_folds(folds)
    rm_agreement = float(np.mean(rm_table.scores.argmax(1) == judge.scores.argmax(1)))
    d_judge = judge.scores[:, :, None] - judge.scores[:, None, :]
    d_rm = rm_table.scores[:, :, None] - rm_table.scores[:, None, :]
    clear = d_judge > 0.5
    pair_agreement = float((d_rm[clear] > 0).mean()) if clear.any() else float("nan")
    curve = mean_curve([f["_curve"] for f in folds])
    model_points = {m: (float(lengths[:, j].mean()), float(judge.scores[:, j].mean())) for j, m in enumerate(judge.models)}
    return {"n": len(judge.records), "models": judge.models, "reward_model": rm_info, "scoring": score_info,
            "rm_top1_agrees_with_judge": rm_agreement, "rm_pair_agreement": pair_agreement, "summary": summary, "folds": public(folds),
            "cost_curve": curve, "model_points": model_points, "seconds": time.perf_counter() - t0}


def mean_curve(curves: list) -> dict[str, list[float]] | None:
    """The lambda sweep averaged over folds (the same lambda grid in every fold)."""
    curves = [c for c in curves if c is not None]
    if not curves:
        return None
    return {"lambda": [float(x) for x in curves[0].lambdas], "cost": np.mean([c.cost for c in curves], 0).tolist(),
            "quality": np.mean([c.quality for c in curves], 0).tolist(), "weak": curves[0].weak,
            "strong": curves[0].strong}


# -- 3. GSM8K, 2 models -------------------------------------------------------------------------

def gsm8k(args, data: Path, embed: Embedder) -> dict[str, Any]:
    records = limited(read_routing(data / "routing" / "gsm8k_2.jsonl"), args.limit * 2 if args.limit else None)
    table = score_table(records)
    emb = embed(table.records)
    console.print(f"[bold]GSM8K[/]: {len(table.records)} problems, models {table.models}")
    # one constant tag ("gsm8k") carries no information: no tag enhancement
    cfg = ZooterConfig(labels=LabelConfig(tags="none"))
    folds = cv_router(table, emb, cfg, args, embed.backbone)
    grid = np.linspace(0, 1, 101)
    router_pgr, knn_pgr, knn_metrics = [], [], []
    for f in folds:
        c = f["_curve"]
        test = table.scores[f["test_idx"]]
        s, w = table.models.index(c.strong), table.models.index(c.weak)
        weak_q, strong_q = test[:, w].mean(), test[:, s].mean()
        router_pgr.append(np.interp(grid, c.x, (c.quality - weak_q) / (strong_q - weak_q)))
        # kNN baseline curve: p(strong) ~ kNN mean score difference
        tr = f["train_idx"]
        mem = KnnMemory(unit_rows(emb[tr]), table.scores[tr])
        k_means = mem.mean_scores(emb[f["test_idx"]], f.get("knn_k") or 25)
        x, q = rm.threshold_sweep(k_means[:, s] - k_means[:, w], test, s, w)
        knn_pgr.append(np.interp(grid, x, (q - weak_q) / (strong_q - weak_q)))
        knn_metrics.append({"apgr": rm.apgr(x, q, weak_q, strong_q), "cpt50": rm.cpt(x, q, weak_q, strong_q, 0.5),
                            "cpt80": rm.cpt(x, q, weak_q, strong_q, 0.8), "auc": rm.auc(x, q)})
    summary = summarize_folds(folds)
    knn_summary = {k: fold_stats([m[k] for m in knn_metrics]) for k in ("apgr", "cpt50", "cpt80", "auc")}
    return {"n": len(table.records), "models": table.models, "strong": folds[0]["_curve"].strong,
            "weak": folds[0]["_curve"].weak, "summary": summary, "knn": knn_summary, "knn_folds": knn_metrics,
            "random": {"apgr": 0.5, "cpt50": 0.5, "cpt80": 0.8},
            "calibration": calibration_check(table, emb, cfg, args, embed.backbone),
            "folds": public(folds), "_grid": grid, "_router_pgr": np.mean(router_pgr, 0),
            "_knn_pgr": np.mean(knn_pgr, 0)}


def calibration_check(table: ScoreTable, emb: np.ndarray, cfg: ZooterConfig, args, backbone) -> list[dict]:
    """Calibrate the threshold for a target strong-model share on the training folds; report
    the share realised on the held-out fold (what a platform team budgets with)."""
    from rewardroute.router.policy import calibrate_threshold

    out = []
    test_idx = kfold(len(table.records), args.folds, args.seed)[0]
    train_idx = np.setdiff1d(np.arange(len(table.records)), test_idx)
    zr, _ = train_zooter(subset(table, train_idx), cfg, backbone=backbone, embeddings=emb[train_idx])
    s = zr.experts.index(zr.state.best_single)
    p_train = zr.probs_from_embeddings(emb[train_idx])[:, s]
    p_test = zr.probs_from_embeddings(emb[test_idx])[:, s]
    for target in (0.2, 0.5, 0.8):
        t = calibrate_threshold(p_train, target)
        out.append({"target_share": target, "threshold": t, "test_share": float((p_test >= t).mean())})
    return out


# -- report -------------------------------------------------------------------------------------
# Everything below reads only the JSON result, so `python benchmarks/publish.py` regenerates the
# section from benchmarks/results/routing.json. Figures are recomputed from the per-fold values;
# claims come from `claim` (a 95% interval that excludes 0), never from fixed text.

def alpaca10_folds(t: dict[str, Any]) -> tuple[list[dict], str, dict[str, str]]:
    """The folds of an AlpacaEval-10 part, its gap reference and fallback texts. Results written
    before best_single was one definition (`best_single_rm_models`) stored the judge's pick as
    best_single's mean score and the reward model's pick in MTR and uplift: they are separated
    here, and the RM pick's mean score, kept only as a summary, is printed without an interval."""
    folds = t["folds"]
    if not folds or "best_single_judge" in (folds[0].get("mean_score") or {}) or "best_single_rm_models" not in t:
        return folds, "best_single", {}
    fixed = []
    for f in folds:
        ms = dict(f["mean_score"])
        ms["best_single_judge"], ms["best_single"] = ms.pop("best_single"), None
        fixed.append(dict(f, mean_score=ms, best_single_judge_model=f.get("best_single_model"),
                          best_single_model=None))
    legacy = t.get("summary", {}).get("best_single_rm")
    return fixed, "best_single_judge", {"best_single": fmt(legacy, 4)} if legacy else {}


def _target(stats: dict, target: float) -> str:
    if not stats or stats.get("ci95") is None:
        return f"the {target:g} target is not settled (no interval)"
    lo, hi = stats["ci95"]
    return (f"the {target:g} target is {'met' if lo >= target else 'missed' if hi < target else 'not settled'} "
            f"(95% interval {'above' if lo >= target else 'below' if hi < target else 'includes'} {target:g})")


def zooter_section(result: dict[str, Any], key: str, rm_desc: str) -> str:
    t = result[key]
    rmi = t["reward_model"]
    folds, ref, fallback = alpaca10_folds(t)
    s = summarize_folds(folds, ref)
    title = "true Zooter" if key == "alpaca10" else "true Zooter with an in-domain reward model"
    rm_time = f", trained in {rmi['seconds'] / 60:.1f} min" if rmi.get("seconds") else ""
    rm_picks = sorted({m for m in t.get("best_single_rm_models") or [f.get("best_single_model") for f in folds] if m})
    judge_picks = sorted({f["best_single_judge_model"] for f in folds if f.get("best_single_judge_model")})
    va = rmi.get("valid_accuracy")
    return (
        f"### AlpacaEval, 10 models: {title} ({t['n']} instructions)\n\n"
        f"Rewards for training come from our own `single` MiniLM reward model, trained on "
        f"{rmi.get('train_pairs')} pairs of {', '.join(rmi.get('domains') or RM_DOMAINS)} ({rm_desc}; valid "
        f"accuracy {'–' if va is None else f'{va:.3f}'}{rm_time}; "
        f"evaluated instructions among its training and validation prompts: {rmi.get('pairs_with_evaluated_instruction', 0)}). "
        f"The router and the kNN/MLP baselines learn from those rewards; everything is judged with the judge's "
        f"win-probabilities. gpt4_1106_preview (the judge's reference, a constant 0.5) is left out. "
        f"best_single is the reward model's pick on the training folds ({', '.join(rm_picks) or '–'}); "
        f"best_single_judge is the judge's pick on the training folds ({', '.join(judge_picks) or '–'}), a "
        f"reference no router here can see (mean score only). "
        f"The reward model's favourite answer is the judge's favourite on {t['rm_top1_agrees_with_judge']:.1%} "
        f"of instructions; on answer pairs the judge separates clearly (|Δp| > 0.5) the two agree on "
        f"{t['rm_pair_agreement']:.1%}.\n\n"
        + methods_table(s, note={"rmr": "10 generations per query"}, fallback=fallback)
        + f"\nCost-aware policy (argmax p − λ·cost, cost = mean answer tokens at one price per token): APGR "
          f"{fmt(s['apgr'])}, CPT(50%) {fmt(s['cpt50'])}, CPT(80%) {fmt(s['cpt80'])}, AIQ {fmt(s['aiq'])} "
          f"(weak = the model with the shortest answers, strong = best_single by the RM; a fold where a CPT "
          f"level is never reached counts as missing).\n\n"
          f"![cost-quality](results/{result['name']}_{key}_cost_quality.png)\n")


def verdict(result: dict[str, Any]) -> str:
    """The headline in words, computed from the numbers (so a re-run cannot leave it stale):
    a comparison is worded as a difference only when its 95% fold interval excludes 0."""
    lines = ["**In short** (95% t-intervals over folds; a difference is claimed only when its interval excludes 0)."]
    a = result.get("alpaca57")
    if a:
        s = summarize_folds(a["folds"])
        r = s["gap_recovered_by_method"]["router"]
        lines.append(f"AlpacaEval-57: the router recovers {fmt(r)} of the best_single-to-oracle gap; on mean "
                     f"score, paired over folds: "
                     + "; ".join(claim(method_diff(a["folds"], "router", b), "router", b)
                                 for b in ("best_single", "knn", "mlp"))
                     + f"; {_target(r, 0.15)}.")
    for key, label in (("alpaca10", "True Zooter with a reward model that never saw chat"),
                       ("alpaca10_chat", "With an in-domain reward model")):
        t = result.get(key)
        if t:
            folds, ref, _ = alpaca10_folds(t)
            s = summarize_folds(folds, ref)
            others = [b for b in ("best_single", "best_single_judge", "rmr") if s["mean_score"].get(b, {}).get("n")]
            lines.append(f"{label}: router {fmt(s['mean_score']['router'], 4)} (judge's win-probability); "
                         + "; ".join(claim(method_diff(folds, "router", b), "router", b) for b in others)
                         + f". The reward model agrees with the judge on {t['rm_pair_agreement']:.0%} of clearly "
                           f"separated answer pairs.")
    g = result.get("gsm8k")
    if g:
        s = summarize_folds(g["folds"])
        apgr = [f.get("apgr") for f in g["folds"]]
        vs_random = claim(fold_stats([x - 0.5 if x is not None else None for x in apgr]), "router", "random (0.5)")
        vs_knn = (claim(paired_diff(apgr, [m.get("apgr") for m in g["knn_folds"]]), "router", "kNN")
                  if g.get("knn_folds") else "router vs kNN: no difference shown (no kNN fold values)")
        lines.append(f"GSM8K: APGR {fmt(s['apgr'])} for the router and {fmt(knn_stats(g)['apgr'])} for kNN; "
                     f"{vs_random}; {vs_knn}.")
    ab = result.get("ablation")
    if ab:
        means = {k: fold_stats(v["folds"])["mean"] for k, v in ab.items()}
        order = sorted(means, key=lambda k: -means[k])
        lines.append(f"Ablation (gap recovered): highest mean {order[0]}, lowest {order[-1]}; "
                     + claim(paired_diff(ab[order[0]]["folds"], ab[order[-1]]["folds"]), order[0], order[-1]) + ".")
    return " ".join(lines) + "\n"


def knn_stats(g: dict[str, Any]) -> dict[str, Any]:
    """kNN's curve metrics over folds (older results kept only a mean and sd: printed as such)."""
    if g.get("knn_folds"):
        return {k: fold_stats([m.get(k) for m in g["knn_folds"]]) for k in ("apgr", "cpt50", "cpt80", "auc")}
    return g["knn"]


def markdown(result: dict[str, Any]) -> str:
    reused = [k for k in ("alpaca10", "alpaca10_chat") if (result.get(k) or {}).get("reward_model", {}).get("reused")]
    parts = [f"## Zooter routing (`{result['name']}`)\n",
             f"`{result['command']}` — frozen all-MiniLM-L6-v2 query embeddings; router = the shared "
             f"ExpertRouter head trained with the KL loss on softmax(minmax(scores)/0.05) labels with tag "
             f"enhancement beta=0.3, head L2 and kNN mix (k=25) chosen by 3-fold inner CV on the training folds. "
             f"{result['folds']}-fold cross-validation over queries; each figure is the mean over folds with its "
             f"95% t-interval and the number of folds where it is defined. best_single is picked on the training "
             f"folds. Finished in {result['total_seconds'] / 60:.1f} min on {result['machine']['cpus']} shared CPUs"
             + (f", reusing the reward models cached in `--work` for {', '.join(reused)} (training times below)"
                if reused else "") + ".\n"]
    parts.append(verdict(result))
    a = result.get("alpaca57")
    if a:
        s = summarize_folds(a["folds"])
        parts.append(f"### AlpacaEval, 57 models ({a['n']} instructions; {a['skipped']} skipped because a model "
                     f"has no score for them)\n\nScores are the GPT-4-turbo judge's win-probabilities against "
                     f"gpt4_1106_preview; tags are the 5 AlpacaEval subsets (MTR and uplift over them). rmr would "
                     f"need the responses and a reward model other than the judge (with the judge it is the "
                     f"oracle).\n\n"
                     + methods_table(s, note={"rmr": "n/a: no responses for 57 models"})
                     + "\nRouter gap recovered per fold: "
                     + ", ".join("–" if f["gap_recovered"] is None else f"{f['gap_recovered']:+.3f}" for f in a["folds"])
                     + ".\n")
    for key, rm_desc in (("alpaca10", "no chat pairs, so no AlpacaEval instruction is ever seen"),
                         ("alpaca10_chat", "plus the chat pairs of a hash-chosen share of the AlpacaEval "
                                           "instructions, which are left out of this evaluation")):
        if result.get(key):
            parts.append(zooter_section(result, key, rm_desc))
    g = result.get("gsm8k")
    if g:
        s, k = summarize_folds(g["folds"]), knn_stats(g)
        parts.append(
            f"### GSM8K, 2 models ({g['n']} problems; strong {g['strong']}, weak {g['weak']})\n\n"
            f"Threshold on p(strong), swept over every share of strong-model calls (RouteLLM's APGR, CPT, AUC).\n\n"
            "| policy | APGR | CPT(50%) | CPT(80%) | AUC |\n|---|---|---|---|---|\n"
            f"| router | {fmt(s['apgr'])} | {fmt(s['cpt50'])} | {fmt(s['cpt80'])} | {fmt(s['auc'])} |\n"
            f"| knn | {fmt(k['apgr'])} | {fmt(k['cpt50'])} | {fmt(k['cpt80'])} | {fmt(k['auc'])} |\n"
            f"| random | 0.500 | 0.500 | 0.800 | |\n\n"
            f"Mean score at 100% strong calls {fmt(s['mean_score']['best_single'], 4)}, oracle "
            f"{fmt(s['mean_score']['oracle'], 4)}. Threshold calibrated on training queries for a target share of "
            f"strong calls, realised share on held-out queries: "
            + ", ".join(f"{c['target_share']:.0%} → {c['test_share']:.1%}" for c in g["calibration"])
            + f".\n\n![gsm8k](results/{result['name']}_gsm8k_pgr.png)\n")
    ab = result.get("ablation")
    if ab:
        rows = "\n".join(f"| {k} | {fmt(fold_stats(v['folds']))} | "
                         f"{fmt(fold_stats(v['fold_mean_scores']) if v.get('fold_mean_scores') else v['mean_score'], 4)} | "
                         f"{fmt(v['mtr'], 2)} | {fmt(v['uplift'], 2)} |" for k, v in ab.items())
        parts.append("### Ablation on AlpacaEval-57 (head only, no kNN mix)\n\n"
                     "Zooter's ablation: the tag-enhancement weight beta (1 = no tags) and hard labels. Paper (MTR, "
                     "6 models, 26 subsets): beta=0 2.06, beta=0.3 1.97, beta=1 2.34, hard 2.31.\n\n"
                     "| labels | gap recovered | mean score | MTR | uplift |\n|---|---|---|---|---|\n" + rows
                     + f"\n\n![ablation](results/{result['name']}_ablation.png)\n")
    return "\n".join(parts)


def status_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """README status rows (what, figure, beside it, what the intervals say), from the JSON."""
    rows = []
    a = result.get("alpaca57")
    if a:
        s = summarize_folds(a["folds"])
        g = s["gap_recovered_by_method"]
        rows.append(("Zooter router, AlpacaEval-57, gap recovered (best_single 0, oracle 1)", fmt(g["router"]),
                     f"kNN {fmt(g['knn'])}", claim(method_diff(a["folds"], "router", "knn"), "router", "kNN")
                     + " (mean score, paired over folds)"))
    g = result.get("gsm8k")
    if g:
        s = summarize_folds(g["folds"])
        apgr = [f.get("apgr") for f in g["folds"]]
        rows.append(("Zooter router, GSM8K 2 models, APGR", fmt(s["apgr"]), f"kNN {fmt(knn_stats(g)['apgr'])}, random 0.5",
                     claim(fold_stats([x - 0.5 if x is not None else None for x in apgr]), "router", "random")))
    return rows


def plots(result: dict[str, Any], parts: dict[str, Any]) -> list[str]:
    out = []
    name = result["name"]
    for key in ("alpaca10", "alpaca10_chat"):
        t = parts.get(key)
        if t and t.get("cost_curve"):
            c = t["cost_curve"]
            out.append(str(cost_quality_plot({"router (λ sweep)": (c["cost"], c["quality"])},
                                             results_dir() / f"{name}_{key}_cost_quality.png",
                                             points=t["model_points"], xlabel="mean answer tokens (cost proxy)",
                                             ylabel="judge win-probability",
                                             title=f"AlpacaEval-10 ({key}): cost-aware routing")))
    g = parts.get("gsm8k")
    if g:
        grid = g["_grid"]
        out.append(str(cost_quality_plot({"router": (grid, g["_router_pgr"]), "knn": (grid, g["_knn_pgr"]),
                                          "random": (grid, grid)}, results_dir() / f"{name}_gsm8k_pgr.png",
                                         xlabel=f"share of calls to {g['strong']}",
                                         ylabel="performance gap recovered", title="GSM8K: PGR vs strong calls")))
    ab = result.get("ablation")
    if ab:
        out.append(str(bar_plot({k: v["gap_recovered"]["mean"] for k, v in ab.items()},
                                results_dir() / f"{name}_ablation.png",
                                errors={k: v["gap_recovered"]["sd"] for k, v in ab.items()},
                                ylabel=f"gap recovered ({result['folds']}-fold mean ± sd)", reference=0.0,
                                title="AlpacaEval-57: label ablation")))
    return out


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data = ensure_built(args.data)
    args.work.mkdir(parents=True, exist_ok=True)
    embed = Embedder(args.work / "embeddings")
    parts: dict[str, Any] = {}
    if "alpaca57" not in args.skip or "ablation" not in args.skip:
        parts["alpaca57"] = alpaca57(args, data, embed)
    if "ablation" not in args.skip:
        parts["ablation"] = ablation(args, parts["alpaca57"], embed)
    if "alpaca10" not in args.skip:
        parts["alpaca10"] = alpaca10(args, data, embed)
    if "alpaca10_chat" not in args.skip and args.rm_chat_share > 0:
        parts["alpaca10_chat"] = alpaca10(args, data, embed, args.rm_chat_share)
    if "gsm8k" not in args.skip:
        parts["gsm8k"] = gsm8k(args, data, embed)
    result: dict[str, Any] = {"benchmark": "routing", "name": args.out, "folds": args.folds, "seed": args.seed,
                              "quick": args.quick}
    for key, part in parts.items():
        if key == "alpaca57" and "alpaca57" in args.skip:
            continue
        result[key] = {k: v for k, v in part.items() if not k.startswith("_")}
    result.update(total_seconds=time.perf_counter() - t0, peak_rss_mb=peak_rss_mb(), command=command_line(),
                  machine=machine())
    result["pngs"] = plots(result, parts)
    publish(args.out, result, None if args.no_results_md or args.quick else markdown(result))


if __name__ == "__main__":
    main()
