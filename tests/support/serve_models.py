"""Small real models for the serve tests, built once per test session and shared.

* a MiniLM `ExpertRouter` over experts `alpha` (arithmetic) and `beta` (writing), trained in
  seconds on a handful of queries (frozen backbone, linear head);
* a `single` reward model with an untrained head (the API does not care about its quality).

Call `serve_models(tmp_path_factory)` from a session fixture: the first call builds, later
calls (from any test module) reuse the same directories and loaded models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MATH = [f"What is {a} plus {b}?" for a, b in [(2, 3), (17, 25), (101, 7), (9, 9)]] + [
    "Solve for x: 3x + 5 = 20.", "What is the square root of 144?", "Compute 12 times 13.",
    "How much is 15 percent of 80?", "Divide 144 by 12 and add 7.", "Is 97 a prime number?"]
WRITING = [
    "Write a short poem about the autumn sea.", "Write a friendly birthday message for my aunt.",
    "Draft a cover letter for a librarian job.", "Tell me a bedtime story about a brave fox.",
    "Write a haiku about morning coffee.", "Compose a toast for my sister's wedding.",
    "Write a limerick about a lazy cat.", "Describe a sunset over the mountains in vivid prose.",
    "Write a thank-you note to my teacher.", "Write a short story opening set in a rainy city."]


@dataclass
class ServeModels:
    router_dir: Path  # experts: alpha (math), beta (writing)
    reward_dir: Path
    loaded: object  # rewardroute.serve.app.LoadedModels for these two


_built: ServeModels | None = None


def build_router(out: Path) -> Path:
    from rewardroute.console import console
    from rewardroute.router import ExpertRouter, RouterConfig, RouterTrainingConfig, fit_router, one_hot, save_router
    from rewardroute.training.seed import set_seed

    set_seed(0)
    router = ExpertRouter.build(RouterConfig(experts=["alpha", "beta"], dropout=0.0))
    texts = MATH + WRITING
    targets = one_hot(["alpha"] * len(MATH) + ["beta"] * len(WRITING), router.experts)
    was, console.quiet = console.quiet, True  # no epoch lines in the test log
    try:
        fit_router(router, texts, targets, RouterTrainingConfig(epochs=60, batch_size=8, lr=3e-2, warmup_ratio=0.0,
                                                                weight_decay=0.0, resume=False), desc="test router")
    finally:
        console.quiet = was
    p = router.probs(["What is 40 plus 2?", "Write a poem about rain."])
    assert p[0, 0] > 0.5 and p[1, 1] > 0.5, f"the test router did not learn: {p}"
    return save_router(router, out)


def build_reward_model(out: Path) -> Path:
    from rewardroute.backbone import BackboneConfig
    from rewardroute.reward import save_model
    from rewardroute.reward.single import SingleConfig, SingleRewardModel

    model = SingleRewardModel.build(SingleConfig(backbone=BackboneConfig(max_length=64)))
    return save_model(model, out)


def serve_models(tmp_path_factory) -> ServeModels:
    global _built
    if _built is None:
        from rewardroute.serve.app import load_models
        from rewardroute.serve.config import parse_serve_config

        root = tmp_path_factory.mktemp("serve-models")
        router_dir = build_router(root / "router")
        reward_dir = build_reward_model(root / "rm")
        cfg = parse_serve_config({"backends": [{"name": "alpha", "base_url": "http://alpha.test/v1", "model": "a"},
                                               {"name": "beta", "base_url": "http://beta.test/v1", "model": "b"}],
                                  "router": {"path": str(router_dir)},
                                  "rewards": {"models": [{"name": "rm", "path": str(reward_dir)}]}})
        _built = ServeModels(router_dir, reward_dir, load_models(cfg))
    return _built


_routed: tuple[Path, object] | None = None


def routed_reward_model(tmp_path_factory) -> tuple[Path, object]:
    """An untrained ARLISS model over domains math and chat (it reports domain probabilities),
    saved and loaded back: (directory, model). Built on first use only."""
    global _routed
    if _routed is None:
        from rewardroute.backbone import BackboneConfig
        from rewardroute.reward import load_model, save_model
        from rewardroute.reward.arliss import ArlissConfig, ArlissRewardModel

        out = tmp_path_factory.mktemp("serve-arliss") / "arliss"
        save_model(ArlissRewardModel.build(ArlissConfig(backbone=BackboneConfig(max_length=64),
                                                        domains=["math", "chat"])), out)
        _routed = (out, load_model(out))
    return _routed
