"""The checks behind scripts/gpu_check.sh: one JSON object on stdout, whatever happens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 0.05  # |GPU bf16 - CPU fp32| reward difference we accept (bf16 keeps ~3 significant digits)


def toy_pairs(n: int = 32) -> list[dict]:
    rows = []
    for i in range(n):
        rows.append({"id": f"m{i}", "prompt": f"What is {i} plus {i}?", "chosen": f"{i} plus {i} is {2 * i}.",
                     "rejected": "No idea, sorry.", "domain": "math"})
        rows.append({"id": f"c{i}", "prompt": f"Say something kind about topic {i}.",
                     "chosen": f"Topic {i} is wonderful and worth learning about.", "rejected": "Go away.",
                     "domain": "chat"})
    return rows


def cli(*args: str, launcher: list[str] | None = None) -> float:
    t0 = time.perf_counter()
    cmd = [*(launcher or [sys.executable]), "-m", "rewardroute", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO / "src")))
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}")
    return round(time.perf_counter() - t0, 1)


def score_on(model_dir: Path, device: str, precision: str, rows: list[dict]) -> list[float]:
    from rewardroute.reward import load_model
    from rewardroute.runtime import RuntimeConfig, running_on

    model = load_model(model_dir)
    with running_on(model, RuntimeConfig(device=device, precision=precision)):
        return model.score([r["prompt"] for r in rows], [r["chosen"] for r in rows]).tolist()


def main() -> dict:
    summary: dict = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        summary["gpu"] = torch.cuda.get_device_name(0)
        summary["bf16_supported"] = torch.cuda.is_bf16_supported()
    tmp = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    rows = toy_pairs()
    (tmp / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:48]))
    (tmp / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[48:]))
    common = ["--train", str(tmp / "train.jsonl"), "--valid", str(tmp / "valid.jsonl"), "--epochs", "2",
              "--max-length", "64", "--seed", "0"]
    checks: dict = {}
    if torch.cuda.is_available():
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        for arch in ("single", "arliss"):
            try:
                secs = cli("rm", "train", "--arch", arch, *common, "--out", str(tmp / arch), "--device", "cuda",
                           "--precision", precision)
                gpu = score_on(tmp / arch, "cuda", precision, rows[48:])
                cpu = score_on(tmp / arch, "cpu", "fp32", rows[48:])
                diff = max(abs(a - b) for a, b in zip(gpu, cpu))
                checks[f"{arch}_gpu_{precision}"] = {"train_seconds": secs, "max_abs_diff_gpu_vs_cpu": round(diff, 5),
                                                    "ok": diff <= TOLERANCE}
            except Exception as e:  # report, go on with the other checks
                checks[f"{arch}_gpu_{precision}"] = {"ok": False, "error": str(e)[-2000:]}
        summary["gpu_part"] = "run"
    else:
        summary["gpu_part"] = "not run: no CUDA GPU visible to torch"
    # Two processes: NCCL will not put two ranks on one GPU, so with fewer than 2 GPUs the
    # data-parallel check runs on CPU processes (gloo).
    n_gpu = torch.cuda.device_count()
    device = "cuda" if n_gpu >= 2 else "cpu"
    try:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        secs = cli("rm", "train", "--arch", "single", *common, "--out", str(tmp / "ddp"), "--device", device,
                   launcher=launcher)
        checks["two_process_training"] = {"device": device, "seconds": secs, "ok": (tmp / "ddp" / "config.json").exists()}
    except Exception as e:
        checks["two_process_training"] = {"device": device, "ok": False, "error": str(e)[-2000:]}
    summary["checks"] = checks
    summary["ok"] = all(c.get("ok") for c in checks.values())
    return summary


if __name__ == "__main__":
    try:
        result = main()
    except Exception:
        result = {"ok": False, "error": traceback.format_exc()[-3000:]}
    print(json.dumps(result, indent=2))
    sys.exit(0 if result.get("ok") else 1)
