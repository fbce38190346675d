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


# ---------------------------------------------------------------- OpenRLHF's remote reward model

def _serve(models, **rewards):
    from rewardroute.serve.app import create_app
    from rewardroute.serve.config import parse_serve_config

    cfg = parse_serve_config({"rewards": {"models": [{"name": "rm", "path": str(models.reward_dir)}], **rewards}})
    return TestClient(create_app(cfg, models=models.loaded))


def test_openrlhf_get_reward_scores_the_response_after_each_prompt(models) -> None:
    queries = [f"<|im_start|>user\n{p}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>" for p, a in zip(PROMPTS, ANSWERS)]
    prompts = [f"<|im_start|>user\n{p}<|im_end|>\n<|im_start|>assistant\n" for p in PROMPTS]
    with _serve(models) as client:
        r = client.post("/get_reward", json={"query": queries, "prompts": prompts, "labels": ["", ""]})
        bad = client.post("/get_reward", json={"query": queries, "prompts": ["not in it", prompts[1]]})
        short = client.post("/get_reward", json={"query": queries, "prompts": prompts[:1]})
    assert r.status_code == 200, r.text
    want = load_model(models.reward_dir).score(prompts, ANSWERS).tolist()
    assert r.json()["rewards"] == pytest.approx(want, abs=1e-5)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "query[0]"
    assert short.status_code == 400


def test_a_call_larger_than_a_forward_pass_is_split_not_refused(models) -> None:
    n = 10
    body = {"model": "rm", "input": [{"prompt": f"What is {i}+{i}?", "response": str(2 * i)} for i in range(n)]}
    with _serve(models, max_batch=3, max_inputs=n) as client:
        ok = client.post("/v1/rewards", json=body)
        over = client.post("/v1/rewards", json={"model": "rm", "input": body["input"] + body["input"][:1]})
    assert ok.status_code == 200, ok.text
    want = load_model(models.reward_dir).score([x["prompt"] for x in body["input"]],
                                               [x["response"] for x in body["input"]]).tolist()
    assert [d["reward"] for d in ok.json()["data"]] == pytest.approx(want, abs=1e-5)
    assert [d["index"] for d in ok.json()["data"]] == list(range(n))
    assert over.status_code == 400 and "rewards.max_inputs" in over.json()["error"]["message"]
