"""Where heavy work runs: the device, the numeric precision and the processes (HF Accelerate).

One `RuntimeConfig` (`--device`, `--precision`) serves training, scoring, embedding and serving.
`accelerator(cfg)` gives the Accelerate object that places models, autocasts and knows the
processes of a launch (`accelerate launch`, `torchrun`; gloo on CPU, NCCL on GPU).

Precision: `fp32` everywhere; `bf16` autocasts matmuls on CPUs and GPUs that support it (weights
stay float32, so checkpoints are the same format); `fp16` only on CUDA, where its loss scaling
applies; `int8` (routing on CPUs only, never training) swaps the backbone's linear layers for
dynamically quantised ones: a 64-token router query takes about half its fp32 time end to end, but embeddings move
(cosine about 0.98 to fp32) and some routing decisions change; `benchmarks/hot_paths.py` measures
both, so it is opt-in. A setting that cannot work on the device is an error, never a silent
fallback.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
from collections.abc import Iterator
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from .errors import ConfigError

Precision = Literal["fp32", "bf16", "fp16"]  # training and inference
InferencePrecision = Literal["fp32", "bf16", "fp16", "int8"]  # int8: inference on CPUs only
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
_MIXED = {"fp32": "no", "bf16": "bf16", "fp16": "fp16", "int8": "no"}  # int8 is not autocast


class RuntimeConfig(BaseModel):
    """`device`: auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps. Under a multi-process
    launch each process takes its own GPU (its local rank); `cuda:N` is for one process."""

    model_config = ConfigDict(extra="forbid")
    device: str = Field(default="auto")
    precision: InferencePrecision = "fp32"

    @field_validator("device")
    @classmethod
    def _known(cls, v: str) -> str:
        if not DEVICE_PATTERN.fullmatch(v):
            raise ValueError(f"unknown device {v!r}: use auto, cpu, cuda, cuda:N or mps")
        return v


def resolve_device(spec: str) -> torch.device:
    """The torch device a spec means on this machine; an unavailable one is an error."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r}: no CUDA GPU is visible to torch (torch {torch.__version__})")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {spec!r}: only {torch.cuda.device_count()} GPU(s) visible")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps': Apple's Metal backend is not available here")
    return device


def check_precision(precision: InferencePrecision, device: torch.device) -> None:
    if precision == "int8" and device.type != "cpu":
        raise ConfigError(f"precision int8 (dynamic quantisation) runs on CPUs only (device is {device.type}); "
                          "use bf16 or fp16 on a GPU")
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"precision fp16 needs a CUDA GPU (device is {device.type}); use bf16 or fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("this GPU does not support bf16; use fp16 or fp32")


def accelerator(cfg: RuntimeConfig | None = None, *, grad_accum: int = 1):
    """The Accelerate object for `cfg`, in this process.

    Accelerate keeps one shared state per process; a process that trains several models with
    different settings one after another (a benchmark, a test session) gets the state reset
    between them, never a silently reused one. Inside a multi-process launch the settings of the
    first call stand (every process runs the same command)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState

    cfg = cfg or RuntimeConfig()
    device = resolve_device(cfg.device)
    check_precision(cfg.precision, device)
    if device.type == "cuda" and device.index is not None and "LOCAL_RANK" not in os.environ:
        torch.cuda.set_device(device)
    state = AcceleratorState._shared_state
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if state and not launched:
        same = (state.get("_mixed_precision") == _MIXED[cfg.precision]
                and PartialState._shared_state.get("device", torch.device("cpu")).type == device.type)
        if not same:
            AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(cpu=device.type == "cpu", mixed_precision=_MIXED[cfg.precision],
                       gradient_accumulation_steps=grad_accum)


@contextlib.contextmanager
def running_on(model: nn.Module, cfg: RuntimeConfig | None = None) -> Iterator[torch.device]:
    """Place `model` on the configured device and autocast to the configured precision for the
    duration (inference: scoring, embedding, routing)."""
    acc = accelerator(cfg)
    model.to(acc.device)
    if cfg is not None and cfg.precision == "int8":
        quantize_int8(getattr(model, "backbone", model))
    with torch.inference_mode(), acc.autocast():
        yield acc.device


def is_int8(module: nn.Module) -> bool:
    """Whether `quantize_int8` has turned any of `module`'s layers to int8 (for good: its vectors
    are no longer fp32 ones, whatever a later runtime says)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return any(isinstance(m, DynamicLinear) for m in module.modules())


def quantize_int8(module: nn.Module) -> nn.Module:
    """`module`'s linear layers, in place, with int8 weights and activations quantised on the fly
    (CPU inference). Idempotent: a second call finds no float linear layer left."""
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch points at torchao; this API is the one torch 2.13 ships
        warnings.simplefilter("ignore")
        # per output channel: on MiniLM it kept embeddings closer to fp32 than one scale per
        # tensor (mean cosine 0.979 against 0.947 on 300 AlpacaEval queries) and ran as fast
        return quantize_dynamic(module, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)


def process_layout() -> tuple[int, int]:
    """(this process's rank, the number of processes): (0, 1) outside a multi-process launch."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_objects(obj):
    """Every process's `obj`, in rank order ([obj] in a single process)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def is_main_process() -> bool:
    """True outside a multi-process launch, and on its rank 0: the one that writes files."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def barrier() -> None:
    """Wait for every process of a launch (nothing to wait for in a single process)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def end_processes() -> None:
    """Tear down a multi-process group at the end of a command, so no rank aborts at exit."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        # Gloo's worker threads may still hold finished work objects; freeing them while the
        # interpreter is alive avoids an abort ("terminate called ...") at exit.
        gc.collect()
        torch.distributed.destroy_process_group()
