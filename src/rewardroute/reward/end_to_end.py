"""Training for architectures that learn as one piece (`single`, `more`): the Bradley-Terry loop
over all their trainable weights. Kept out of `base` so that the model interface imports no
trainer (routed architectures train part by part in `routing`)."""

from __future__ import annotations

from pathlib import Path

from ..training.loop import TrainResult
from .pairwise_fit import fit_pairwise


class TrainedEndToEnd:
    """Mixin: `fit` trains every trainable weight on the pairs at once."""

    arch: str

    def fit(self, train, valid, args, *, resume_dir: Path | None = None) -> TrainResult:
        return fit_pairwise(self, train, valid, args, resume_dir=resume_dir, desc=f"train {self.arch}")
