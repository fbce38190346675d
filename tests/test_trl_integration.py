"""`rewardroute.integrations.trl.reward_function`: TRL's reward_funcs signature, local or served."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from rewardroute.integrations.trl import reward_function
from rewardroute.reward import load_model

PROMPTS = ["What is 2+2?", "Name a colour."]
ANSWERS = ["4", "Blue."]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from support.serve_models import serve_models

    return serve_models(tmp_path_factory)


def _expected(models) -> list[float]:
    return load_model(models.reward_dir).score(PROMPTS, ANSWERS).tolist()


def test_local_model_takes_standard_and_conversational_rows(models) -> None:
    f = reward_function(models.reward_dir)
    standard = f(prompts=PROMPTS, completions=ANSWERS, ground_truth=["x", "y"])
    conversational = f(prompts=[[{"role": "user", "content": p}] for p in PROMPTS],
                       completions=[[{"role": "assistant", "content": a}] for a in ANSWERS])
    assert standard == pytest.approx(_expected(models), abs=1e-6)
    assert conversational == pytest.approx(standard, abs=1e-6)
    assert f.__name__ == "rewardroute_reward"  # TRL logs each reward function by its name


def test_served_model_is_called_in_chunks(models) -> None:
    from rewardroute.serve.app import create_app
    from rewardroute.serve.config import parse_serve_config

    cfg = parse_serve_config({"rewards": {"models": [{"name": "rm", "path": str(models.reward_dir)}],
                                          "max_inputs": 1}})
    with TestClient(create_app(cfg, models=models.loaded)) as client:
        f = reward_function("http://testserver", model="rm", chunk=1, http_client=client)
        got = f(prompts=PROMPTS, completions=ANSWERS)
    assert got == pytest.approx(_expected(models), abs=1e-5)
