"""Run `train_loop` on a small deterministic problem and write the final weights (rank 0 only).

    python tests/support/dist_loop.py OUT.pt [grad_accum]            # one process
    torchrun --standalone --nproc_per_node 2 tests/support/dist_loop.py OUT.pt   # two

No dropout and no data-dependent randomness: one process and several must end on the same
weights (up to float summation order), which checks the gradient averaging exactly.
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from rewardroute.runtime import end_processes, is_main_process
from rewardroute.training.args import TrainingArgs
from rewardroute.training.loop import train_loop


def main(out: str, grad_accum: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(45, 6, generator=g)  # 45 rows: the last batch of 8 is a partial one
    y = x @ torch.randn(6, 1, generator=g) + 0.1 * torch.randn(45, 1, generator=g)
    torch.manual_seed(0)
    model = nn.Linear(6, 1)

    def step(batch: list[int]):
        idx = torch.tensor(batch)
        loss = ((model(x[idx]) - y[idx]) ** 2).mean()
        return loss, {}

    args = TrainingArgs(epochs=3, batch_size=8, lr=0.05, weight_decay=0.0, warmup_ratio=0.0, device="cpu",
                        grad_accum=grad_accum, resume=False)
    train_loop(model, list(range(45)), step, None, args, desc="dist test")
    if is_main_process():
        torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, out)
    end_processes()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
