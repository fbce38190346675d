"""`rewardroute rm`: train, evaluate and use reward models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import DeviceOption, PrecisionOption, cli_errors, print_json, runtime_config

app = typer.Typer(help="Reward models: train, eval, score.", no_args_is_help=True)

TRAIN_EPILOG = """
Examples:

  rewardroute rm train --arch single --train data/prefs/train.jsonl --valid data/prefs/valid.jsonl --out runs/rm

  rewardroute rm train --arch single --train T --valid V --out runs/rm --epochs 3 --max-pairs 2000 --seed 1

  rewardroute rm train --arch single --train T --valid V --out runs/rm --config rm.yaml --set training.lr=1e-4

A config file (YAML or JSON) may hold `model:` (architecture settings, e.g. `backbone:`)
and `training:` (lr, epochs, batch_size, ...) sections. Flags win over the file.
An interrupted run resumes from `<out>.resume/` when started again with the same arguments.
"""


def _model_and_training(arch: str, config_file: Optional[Path], sets: list[str] | None, **flags):
    from ..config_overrides import apply_flags, apply_overrides, load_config_file, split_sections
    from ..reward.registry import get_arch
    from ..reward.reward_config import RewardTrainingConfig

    cfg = apply_overrides(load_config_file(config_file), sets)
    apply_flags(cfg, {"model.arch": arch, "model.backbone.name_or_path": flags.get("backbone"),
                      "model.backbone.max_length": flags.get("max_length"), "model.backbone.pooling": flags.get("pooling"),
                      **{f"training.{k}": flags.get(k) for k in ("epochs", "max_pairs", "seed", "lr", "batch_size",
                                                                 "device", "precision", "grad_accum",
                                                                 "gradient_checkpointing")}})
    cls = get_arch(arch)
    parts = split_sections(cfg, {"model": cls.config_class, "training": RewardTrainingConfig})
    return cls, parts["model"], parts["training"]


# Training's runtime flags (rm train, rm add-domain): None keeps the config's (or the model's) value.
TrainDevice = Annotated[Optional[str], typer.Option(help="auto, cpu, cuda, cuda:N or mps.", show_default="auto")]
TrainPrecision = Annotated[Optional[str], typer.Option(help="fp32, bf16 or fp16 (CUDA).", show_default="fp32")]
GradAccum = Annotated[Optional[int], typer.Option(help="Micro-batches per step: the same batch in less memory.",
                                                  show_default="1")]


@app.command(epilog=TRAIN_EPILOG)
def train(
    arch: Annotated[str, typer.Option(help="Architecture: single, more, rodos, arliss.")] = "single",
    train_file: Annotated[str, typer.Option("--train", help="Training pairs (JSONL/CSV/Parquet, or hf://owner/name[:split]).")] = ...,
    valid_file: Annotated[Optional[str], typer.Option("--valid", help="Validation pairs; the best epoch on them is kept.")] = None,
    out: Annotated[Path, typer.Option(help="Output checkpoint directory.")] = ...,
    backbone: Annotated[Optional[str], typer.Option(help="Backbone: alias (all-MiniLM-L6-v2, smollm2-135m), hub id or path.", show_default="all-MiniLM-L6-v2")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs.", show_default="2")] = None,
    max_pairs: Annotated[Optional[int], typer.Option(help="Cap on training pairs, taken evenly across domains.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.", show_default="42")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate.", show_default="0.0001")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Pairs per step.", show_default="16")] = None,
    max_length: Annotated[Optional[int], typer.Option(help="Tokens per (prompt, response).", show_default="256")] = None,
    pooling: Annotated[Optional[str], typer.Option(help="auto, mean, cls or last.", show_default="auto")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML/JSON file with model: and training: sections.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override one setting: section.key=value.")] = None,
    soft: Annotated[bool, typer.Option(help="rodos: weight every domain model's reward by the router's probability.")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Skip malformed rows (reported) instead of failing.")] = False,
    device: TrainDevice = None,
    precision: TrainPrecision = None,
    grad_accum: GradAccum = None,
    gradient_checkpointing: Annotated[Optional[bool], typer.Option("--gradient-checkpointing/--no-gradient-checkpointing", help="Recompute activations in the backward pass (less memory).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Discard the resume state of an earlier run into OUT and start afresh.")] = False,
) -> None:
    """Train a reward model on preference pairs and save it to OUT (also under torchrun / accelerate launch)."""
    with cli_errors():
        import shutil

        from ..console import console
        from ..data.readers import read_pairs
        from ..reward.reward_trainer import build_for_training, train_reward_model
        from ..runtime import is_main_process

        if soft:
            set_ = [*(set_ or []), "model.soft=true"]
        cls, model_cfg, train_cfg = _model_and_training(
            arch, config, set_, backbone=backbone, max_length=max_length, pooling=pooling,
            epochs=epochs, max_pairs=max_pairs, seed=seed, lr=lr, batch_size=batch_size, device=device,
            precision=precision, grad_accum=grad_accum, gradient_checkpointing=gradient_checkpointing)
        if overwrite and is_main_process():
            shutil.rmtree(out.with_name(out.name + ".resume"), ignore_errors=True)
        pairs = _read(read_pairs, train_file, skip_bad)
        valid = _read(read_pairs, valid_file, skip_bad) if valid_file else []
        model_cfg = model_cfg.model_copy(update={"domains": sorted({p.domain for p in pairs})})
        model = build_for_training(cls, model_cfg, train_cfg.seed)
        result = train_reward_model(model, pairs, valid, train_cfg, out)
        valid_note = (f"best epoch {result.best_epoch}, valid accuracy {result.best_metric:.4f}"
                      if result.best_metric is not None else "no validation set: kept the last epoch")
        if is_main_process():
            console.print(f"saved [bold]{arch}[/] reward model to {out} ({valid_note}, {result.seconds:.0f}s)")


def _read(reader, path: str, skip_bad: bool):
    from ..console import console
    from ..data.readers import ReadReport

    report = ReadReport(path=str(path))
    rows = reader(path, skip_bad=skip_bad, report=report)
    if report.skipped:
        console.print(f"[yellow]skipped {report.skipped} bad rows[/] in {path}; first: {report.errors[0]}")
    return rows


@app.command("eval", epilog="""
Examples:

  rewardroute rm eval --model runs/rm --data data/prefs/test.jsonl --baselines-train data/prefs/train.jsonl --json

  rewardroute rm eval --model runs/rodos --data data/prefs/test.jsonl --oracle-domain

Every accuracy comes with a 95% bootstrap interval that resamples whole prompt groups (the
prompt, or its story / task / first turn). With --baselines-train the length rule and the
surface-feature regression are fitted on that file (the training split: never the test data)
and the model's paired margin over the best baseline of each domain is reported; without it
the only baseline is "longer wins". "X beats Y" is printed only where the interval excludes 0.
""")
def eval_(
    model: Annotated[Path, typer.Option(help="Reward-model checkpoint directory.")] = ...,
    data: Annotated[str, typer.Option(help="Preference pairs to evaluate on (a file or hf://owner/name[:split]).")] = ...,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    batch_size: Annotated[int, typer.Option(help="Sequences per forward pass.")] = 64,
    max_pairs: Annotated[Optional[int], typer.Option(help="Evaluate on at most this many pairs (even across domains).")] = None,
    oracle_domain: Annotated[bool, typer.Option(help="Routed models: use the true domain instead of the router.")] = False,
    soft: Annotated[Optional[bool], typer.Option("--soft/--hard", help="rodos: mix every domain model's reward by the router's probabilities (--soft) or use the top domain's model (--hard); default: as trained.")] = None,
    skip_bad: Annotated[bool, typer.Option(help="Skip malformed rows instead of failing.")] = False,
    baselines_train: Annotated[Optional[Path], typer.Option(help="Training pairs to fit the length rule and surface-feature baselines on (the train split).")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% intervals.", min=100)] = 2000,
    bootstrap_seed: Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")] = 0,
    plot: Annotated[Optional[Path], typer.Option(help="Also write a PNG: the model beside the baselines, with intervals.")] = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
) -> None:
    """Pairwise accuracy (per domain and domain average) with intervals, beside the baselines."""
    with cli_errors():
        from ..data.readers import read_pairs
        from ..eval.baselines import fit_baselines
        from ..eval.intervals import BootstrapConfig
        from ..eval.pairwise import evaluate_reward_model
        from ..eval.report import print_comparison
        from ..reward.checkpoint import load_model
        from ..data.sampling import cap_pairs
        from ..runtime import running_on

        pairs = cap_pairs(_read(read_pairs, data, skip_bad), max_pairs, seed=0)
        fitted = fit_baselines(_read(read_pairs, baselines_train, skip_bad)) if baselines_train else None
        rm = load_model(model)
        if soft is not None:
            from ..reward.rodos import set_soft_mixing
            set_soft_mixing(rm, soft)
        with running_on(rm, runtime_config(device, precision)):
            result = evaluate_reward_model(rm, pairs, batch_size=batch_size, oracle_domain=oracle_domain,
                                           baselines=fitted,
                                           intervals=BootstrapConfig(resamples=bootstrap, seed=bootstrap_seed))
        if plot is not None:
            from ..eval.plots import comparison_bars

            comparison_bars(rm.arch, result, plot, title=f"{rm.arch} on {Path(str(data)).name}: accuracy, 95% intervals")
        if json_:
            print_json(result)
        else:
            comparison = {key: result[key] for key in ("bootstrap", "baselines", "best_baseline")}
            comparison["models"] = {rm.arch: {"accuracy": result["intervals"],
                                              "vs_best_baseline": result["vs_best_baseline"]}}
            print_comparison(comparison, title=f"{model} on {data} ({result['pairs']} pairs, 95% intervals)")


@app.command(epilog="""
Examples:

  rewardroute rm score --model runs/rm --input pairs.jsonl --output scored.jsonl

  torchrun --nproc_per_node 4 -m rewardroute rm score --model runs/rm --input big.jsonl --output scored.jsonl

Rows with `prompt` and `response` get a `reward`; preference pairs get `chosen_reward`
and `rejected_reward`. A re-run after an interruption scores only the rows not yet done.
Under torchrun / accelerate launch each process scores a contiguous shard (one GPU each) and
the first joins them in input order: the output is the one a single process writes.
""")
def score(
    model: Annotated[Path, typer.Option(help="Reward-model checkpoint directory.")] = ...,
    input_: Annotated[Path, typer.Option("--input", help="JSONL rows with prompt+response, or preference pairs.")] = ...,
    output: Annotated[Path, typer.Option("--out", "--output", help="Output JSONL (written atomically).")] = ...,
    batch_size: Annotated[int, typer.Option(help="Rows per forward pass.")] = 64,
    overwrite: Annotated[bool, typer.Option(help="Start afresh when OUT was made from another input or model.")] = False,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
) -> None:
    """Add rewards to every row of a file (an interrupted run resumes; a different input or model is an error)."""
    with cli_errors():
        from ..console import console
        from ..fingerprint import checkpoint_identity
        from ..reward.checkpoint import load_model
        from ..reward.scoring import score_file
        from ..runtime import running_on

        rm = load_model(model)
        with running_on(rm, runtime_config(device, precision)):
            n = score_file(rm, input_, output, model_identity=checkpoint_identity(model),
                           batch_size=batch_size, overwrite=overwrite, settings={"precision": precision})
        console.print(f"scored {n} rows -> {output}")


@app.command("add-domain", epilog="""
Examples:

  rewardroute data build --out stories --domains stories --no-routing   # its own folder; or any pairs whose domain is NAME

  rewardroute rm add-domain --model runs/rodos --domain stories --train stories/prefs/train.jsonl --valid stories/prefs/valid.jsonl

  rewardroute rm add-domain --model runs/arliss --domain stories --train T --valid V --out runs/arliss+stories

rodos gains a new `single` domain model, arliss a new LoRA adapter with its head; the router
gains one output, fitted on the routing prompts the checkpoint keeps for its old domains plus
the new domain's prompts. Existing domain models, adapters and router outputs are not changed.
Training settings default to those the model was trained with; flags and --set override them.
""")
def add_domain(
    model: Annotated[Path, typer.Option(help="rodos or arliss checkpoint directory.")] = ...,
    domain: Annotated[str, typer.Option(help="Name of the new domain (the `domain` field of its pairs).")] = ...,
    train_file: Annotated[str, typer.Option("--train", help="Training pairs; those of DOMAIN are used.")] = ...,
    valid_file: Annotated[Optional[str], typer.Option("--valid", help="Validation pairs of DOMAIN.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Where to save (default: replace MODEL, atomically).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs.", show_default="2")] = None,
    max_pairs: Annotated[Optional[int], typer.Option(help="Cap on the new domain's training pairs.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate (rodos; arliss adapters use the model's adapter_lr).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Pairs per step.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override one training setting: training.key=value.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Skip malformed rows instead of failing.")] = False,
    device: TrainDevice = None,
    precision: TrainPrecision = None,
    grad_accum: GradAccum = None,
) -> None:
    """Add a domain to a rodos or arliss model without retraining its existing experts."""
    with cli_errors():
        from ..config_overrides import apply_flags, apply_overrides, split_sections
        from ..console import console
        from ..data.readers import read_pairs
        from ..reward.add_domain import add_domain_to_checkpoint
        from ..reward.checkpoint import read_reward_meta
        from ..reward.reward_config import RewardTrainingConfig

        trained = (read_reward_meta(model).get("extra") or {}).get("training", {}).get("args", {})
        cfg = apply_overrides({"training": dict(trained)}, set_)
        apply_flags(cfg, {"training.epochs": epochs, "training.max_pairs": max_pairs, "training.seed": seed,
                          "training.lr": lr, "training.batch_size": batch_size, "training.device": device,
                          "training.precision": precision, "training.grad_accum": grad_accum})
        args = split_sections(cfg, {"training": RewardTrainingConfig})["training"]
        pairs = _read(read_pairs, train_file, skip_bad)
        valid = _read(read_pairs, valid_file, skip_bad) if valid_file else []
        result = add_domain_to_checkpoint(model, domain, pairs, valid, args, out)
        if json_:
            print_json(result)
        else:
            console.print(f"added domain [bold]{domain}[/] to the {result['arch']} model -> {result['out']} "
                          f"(domains: {', '.join(result['domains'])})")


@app.command(epilog="""
Examples:

  rewardroute rm export --model runs/rm --out runs/rm-hf

Then, in plain transformers (the folder carries its modeling code, hence trust_remote_code):

  model = AutoModelForSequenceClassification.from_pretrained("runs/rm-hf", trust_remote_code=True)
""")
def export(
    model: Annotated[Path, typer.Option(help="A `single` reward-model checkpoint.")] = ...,
    out: Annotated[Path, typer.Option(help="Folder to write the transformers model to.")] = ...,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Export a `single` reward model as a transformers sequence-classification model (logits[:, 0] = reward)."""
    with cli_errors():
        from ..console import console
        from ..reward.export import export_transformers

        result = export_transformers(model, out)
        if json_:
            print_json(result)
        else:
            console.print(f"exported {model} -> {out} (pooling {result['pooling']}, max_length {result['max_length']}); "
                          "load it with AutoModelForSequenceClassification.from_pretrained(..., trust_remote_code=True)",
                          highlight=False, markup=False)
