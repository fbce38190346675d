"""The main job on the shipped defaults (`make demo`).

Builds the data from the public sources when needed, trains the baseline reward model on a
small mixed-domain budget, and prints its test accuracy per domain beside the "longer response
wins" heuristic. Every setting is a field of `DemoConfig`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .backbone import BackboneConfig
from .console import console
from .reward.reward_config import RewardTrainingConfig


class DemoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Path = Path("data")
    out: Path = Path("runs/demo")
    backbone: BackboneConfig = Field(default_factory=lambda: BackboneConfig(max_length=192))
    train_per_domain: int = 120
    valid_per_domain: int = 20
    test_per_domain: int = 60
    training: RewardTrainingConfig = Field(default_factory=lambda: RewardTrainingConfig(epochs=1, lr=1e-4))


def run_demo(cfg: DemoConfig) -> dict:
    from .data.ensure import ensure_built
    from .data.readers import read_pairs
    from .eval.pairwise import evaluate_reward_model
    from .eval.report import print_accuracy_table
    from .reward.reward_trainer import cap_per_domain, train_reward_model
    from .reward.single import SingleConfig, SingleRewardModel

    data = ensure_built(cfg.data)
    seed = cfg.training.seed

    def read(split: str, n: int):
        return [p for ps in cap_per_domain(read_pairs(data / "prefs" / f"{split}.jsonl"), n, seed).values() for p in ps]

    train, valid, test = read("train", cfg.train_per_domain), read("valid", cfg.valid_per_domain), read("test", cfg.test_per_domain)
    console.rule("[bold]1. baseline reward model (single, all domains mixed)")
    console.print(f"{len(train)} training pairs, {len(valid)} valid, {len(test)} test; backbone "
                  f"{cfg.backbone.name_or_path}, {cfg.backbone.max_length} tokens")
    model = SingleRewardModel.build(SingleConfig(backbone=cfg.backbone, domains=sorted({p.domain for p in train})))
    out = cfg.out / "rm-single"
    train_reward_model(model, train, valid, cfg.training, out)
    result = evaluate_reward_model(model, test)
    print_accuracy_table({"single (mixed)": result["accuracy"], "longer response wins": result["length_baseline"]},
                         title=f"test accuracy ({result['pairs']} pairs)")
    console.print(f"model saved to {out}; {result['pairs_per_second']:.1f} pairs/s; "
                  f"{result['params']['total'] / 1e6:.1f}M parameters")
    return result
