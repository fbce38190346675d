"""A small, resumable training loop.

AdamW, linear warmup then linear decay, gradient clipping, evaluation after every epoch
keeping the best weights, a seed, a rich progress bar, and resume state written atomically
to `<out>.resume/` so an interrupted run carries on where it stopped.

The resume state is what an exact resume needs and no more: the trainable parameters (never
frozen ones), the optimizer's moments, the schedule, the RNG, and the best epoch's weights
only while they differ from the current ones.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..console import console, progress
from ..io import atomic_dir
from ..runtime import accelerator
from .args import TrainingArgs
from .seed import set_seed

StepFn = Callable[[list[Any]], tuple[torch.Tensor, dict[str, float]]]
EvalFn = Callable[[], float]


@dataclass
class TrainResult:
    best_metric: float | None  # None when there was no validation set
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    resumed: bool = False


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n, v in state.items():
            params[n].copy_(v)


def fingerprint(args: TrainingArgs, items: Sequence[Any], extra: str = "") -> str:
    """Identifies a job (its settings and every training item, in order), so that resume state
    is never applied to a different one."""
    from ..fingerprint import rows_sha256

    h = hashlib.sha256(args.model_dump_json(exclude={"checkpoint_every_s", "checkpoint_every_steps", "resume",
                                                     "device", "grad_accum", "gradient_checkpointing"}).encode())
    h.update(rows_sha256(items).encode())
    h.update(extra.encode())
    return h.hexdigest()[:16]


def build_optimizer(model: nn.Module, args: TrainingArgs, lr_overrides: dict[str, float] | None = None):
    """AdamW without decay on biases and norms; `lr_overrides` maps a name prefix to its lr."""
    lr_overrides = lr_overrides or {}
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lr = next((v for k, v in lr_overrides.items() if name.startswith(k)), args.lr)
        wd = 0.0 if p.ndim < 2 else args.weight_decay
        groups.setdefault((lr, wd), []).append(p)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW([{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()])


def linear_schedule(optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_loop(model: nn.Module, items: Sequence[Any], step_fn: StepFn, eval_fn: EvalFn | None,
               args: TrainingArgs, *, resume_dir: Path | None = None, desc: str = "train",
               lr_overrides: dict[str, float] | None = None, job_key: str = "") -> TrainResult:
    """Train `model` on `items` (batched as plain lists) and leave the best weights in it.

    `step_fn(batch) -> (loss, stats)`; `eval_fn() -> metric` (higher is better) runs after
    every epoch. Without `eval_fn` the last epoch is kept and no validation metric is reported.
    """
    if not items:
        raise ValueError("no training items")
    acc = accelerator(args.runtime())
    world, rank, main = acc.num_processes, acc.process_index, acc.is_main_process
    set_seed(args.seed)
    model.to(acc.device)
    if args.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    optimizer = build_optimizer(model, args, lr_overrides)
    steps_per_epoch = math.ceil(len(items) / args.batch_size)
    total = steps_per_epoch * args.epochs
    scheduler = linear_schedule(optimizer, int(total * args.warmup_ratio), total)
    fp = fingerprint(args, items, job_key)

    result = TrainResult(best_metric=-math.inf, best_epoch=-1)
    best_state: dict[str, torch.Tensor] | None = None
    start_epoch, skip_steps = 0, 0
    if resume_dir is not None and args.resume:
        restored = _restore(resume_dir, fp, model, optimizer, scheduler)
        if restored is not None:
            start_epoch, skip_steps, result, best_state = restored
            result.resumed = True
            console.print(f"[yellow]resuming[/] {desc} from {resume_dir} at epoch {start_epoch + 1}, "
                          f"step {skip_steps}")

    def save(epoch: int, step: int, best, **kw) -> None:  # one writer; the others wait for it
        if main:
            _save(resume_dir, fp, model, optimizer, scheduler, epoch, step, result, best, **kw)
        acc.wait_for_everyone()

    t0 = time.perf_counter() - result.seconds
    last_save, last_save_step = time.perf_counter(), result.steps
    params = [p for p in model.parameters() if p.requires_grad]
    with progress(disable=not main) as bar:
        task = bar.add_task(desc, total=total, completed=start_epoch * steps_per_epoch + skip_steps, status="")
        for epoch in range(start_epoch, args.epochs):
            model.train()
            gen = torch.Generator().manual_seed(args.seed * 1000 + epoch)
            order = torch.randperm(len(items), generator=gen).tolist()
            running: dict[str, float] = {}
            for step in range(skip_steps, steps_per_epoch):
                batch = [items[i] for i in order[step * args.batch_size:(step + 1) * args.batch_size]]
                optimizer.zero_grad(set_to_none=True)
                loss_value, stats = _accumulate(batch[rank::world], len(batch), world, args.grad_accum,
                                                step_fn, acc)
                if world > 1:
                    _average_gradients(params)
                torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                result.steps += 1
                stats = {"loss": loss_value, **stats}
                for k, v in stats.items():  # exponential moving average for the status line
                    running[k] = v if k not in running else 0.9 * running[k] + 0.1 * v
                bar.update(task, advance=1, status=" ".join(f"{k}={v:.3f}" for k, v in running.items()))
                due = (result.steps - last_save_step >= args.checkpoint_every_steps
                       or time.perf_counter() - last_save > args.checkpoint_every_s)
                if resume_dir is not None and due and step + 1 < steps_per_epoch:  # the epoch end saves anyway
                    result.seconds = time.perf_counter() - t0
                    save(epoch, step + 1, best_state)
                    last_save, last_save_step = time.perf_counter(), result.steps
            skip_steps = 0
            metric = eval_fn() if eval_fn is not None else None  # every rank: the weights are identical
            record = {"epoch": epoch + 1, "valid": metric, **{f"train_{k}": v for k, v in running.items()}}
            result.history.append(record)
            if metric is None:  # no validation set: the last epoch is the one kept
                result.best_epoch = epoch + 1
                if main:
                    bar.console.print(f"{desc} epoch {epoch + 1}/{args.epochs} done (no validation set)",
                                      highlight=False)
            else:
                if metric > result.best_metric:
                    result.best_metric, result.best_epoch = metric, epoch + 1
                    best_state = trainable_state(model)
                if main:
                    bar.console.print(f"{desc} epoch {epoch + 1}/{args.epochs}: valid={metric:.4f}"
                                      f"{'  (best)' if result.best_epoch == epoch + 1 else ''}", highlight=False)
            result.seconds = time.perf_counter() - t0
            if resume_dir is not None and epoch + 1 < args.epochs:
                current_is_best = result.best_epoch == epoch + 1
                save(epoch + 1, 0, None if current_is_best else best_state, best_is_current=current_is_best)
                last_save, last_save_step = time.perf_counter(), result.steps
    if best_state is not None:
        load_trainable(model, best_state)
    if eval_fn is None:
        result.best_metric = None
    result.seconds = time.perf_counter() - t0
    model.eval()
    return result


def _accumulate(local: list[Any], global_size: int, world: int, grad_accum: int, step_fn: StepFn,
                acc) -> tuple[float, dict[str, float]]:
    """Backward this process's share of a batch in `grad_accum` micro-batches, each loss weighted
    so that averaging the gradients over processes gives the gradient of the whole batch's mean
    loss. Returns this share's mean loss and the last micro-batch's stats."""
    total, stats = 0.0, {}
    for chunk in (c for c in _chunks(local, grad_accum) if c):
        with acc.autocast():
            loss, stats = step_fn(chunk)
        (loss * (len(chunk) * world / global_size)).backward()
        total += loss.item() * len(chunk)
    return (total / len(local) if local else 0.0), stats


def _chunks(rows: list[Any], n: int) -> list[list[Any]]:
    size = math.ceil(len(rows) / n) if rows else 0
    return [rows[i:i + size] for i in range(0, len(rows), size)] if size else []


def _average_gradients(params: list[nn.Parameter]) -> None:
    """Mean of every gradient over the processes, in one collective through Accelerate. A part
    trained through several forward paths (adapters, routers, experts) has parameters without a
    gradient on some ranks: they count as zeros, which DDP's one-forward contract cannot express."""
    from accelerate.utils import reduce

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = reduce(torch.cat([g.reshape(-1) for g in grads]), reduction="mean")
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(g).clone()
        offset += n


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Recompute activations in the backward pass for every transformers model inside `model`."""
    from transformers import PreTrainedModel

    for m in model.modules():
        if isinstance(m, PreTrainedModel) and m.supports_gradient_checkpointing:
            m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def _save(folder: Path, fp: str, model, optimizer, scheduler, epoch: int, step: int,
          result: TrainResult, best_state, *, best_is_current: bool = False) -> None:
    """`best_is_current`: the best weights are the current ones, stored once (not twice)."""
    with atomic_dir(folder) as tmp:
        torch.save({
            # trainable_state: never the frozen weights, which the model rebuilds from its source
            "model": trainable_state(model), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "best": None if best_is_current else best_state,
            "rng": torch.get_rng_state(),
        }, tmp / "state.pt")
        meta = {"fingerprint": fp, "epoch": epoch, "step": step, "best_metric": result.best_metric,
                "best_epoch": result.best_epoch, "history": result.history, "steps": result.steps,
                "seconds": result.seconds, "best_is_current": best_is_current}
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def _restore(folder: Path, fp: str, model, optimizer, scheduler):
    meta_file = folder / "meta.json"
    if not meta_file.exists():
        return None
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    if meta.get("fingerprint") != fp:
        console.print(f"[yellow]warning:[/] {folder} belongs to a different job (other data or "
                      "settings); starting fresh")
        return None
    state = torch.load(folder / "state.pt", weights_only=False)
    load_trainable(model, state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    result = TrainResult(best_metric=meta["best_metric"], best_epoch=meta["best_epoch"],
                         history=meta["history"], steps=meta["steps"], seconds=meta["seconds"])
    best = trainable_state(model) if meta.get("best_is_current") else state["best"]
    return meta["epoch"], meta["step"], result, best
