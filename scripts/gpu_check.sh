#!/usr/bin/env bash
# GPU checks in one run (about 8 minutes at most): bf16 training of `single` and `arliss` on the
# GPU, GPU vs CPU scores of the same checkpoints, and the 2-process training test. Prints one JSON
# summary on stdout (progress goes to stderr). On a machine without a CUDA GPU it runs what it can
# on the CPU and says that the GPU part was not run.
#
#   bash scripts/gpu_check.sh            # uses .venv, creating it if missing
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv >&2
fi
# torch first and pinned (see README); on a GPU machine the pinned build must be CUDA-enabled.
.venv/bin/python -c 'import torch' 2>/dev/null || .venv/bin/pip install --quiet torch==2.13.0 >&2
.venv/bin/python -c 'import rewardroute' 2>/dev/null || .venv/bin/pip install --quiet -e '.[dev]' >&2
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec timeout 480 .venv/bin/python scripts/gpu_check.py
