"""The Python API (`load_reward_model`, `load_router`) and TRL-style rows, as a new user writes them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from rewardroute.data.readers import read_pairs
from rewardroute.data.schemas import DEFAULT_DOMAIN, PreferencePair

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    from support.serve_models import serve_models

    return serve_models(tmp_path_factory)


def test_import_does_not_load_torch() -> None:
    import subprocess
    import sys

    code = "import sys, rewardroute; assert 'torch' not in sys.modules; print(rewardroute.load_reward_model.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "load_reward_model"


def test_reward_model_scores_strings_and_openai_dicts_alike(models) -> None:
    from rewardroute import load_reward_model
    from rewardroute.reward import load_model

    rm = load_reward_model(models.reward_dir)
    prompts = ["What is 2+2?", [{"role": "user", "content": "What is 2+2?"}],
               [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]]
    rewards = rm.score(prompts, ["4"] * 3)
    assert isinstance(rewards, list) and len(set(rewards)) == 1
    direct = load_model(models.reward_dir).score(["What is 2+2?"], ["4"]).tolist()
    assert rewards[0] == pytest.approx(direct[0], abs=1e-6)


def test_routed_reward_model_labels_domain_probs(tmp_path_factory) -> None:
    from rewardroute import load_reward_model
    from support.serve_models import routed_reward_model

    path, _ = routed_reward_model(tmp_path_factory)
    out = load_reward_model(path).score_detailed(["What is 2+2?"], ["4"])
    assert set(out[0].domain_probs) == {"math", "chat"}
    assert out[0].domain == max(out[0].domain_probs, key=out[0].domain_probs.get)
    assert sum(out[0].domain_probs.values()) == pytest.approx(1.0, abs=1e-5)


def test_router_routes_queries_by_name(models) -> None:
    from rewardroute import load_router

    router = load_router(models.router_dir)
    assert router.experts == ["alpha", "beta"]
    assert router.route(["What is 40 plus 2?", [{"role": "user", "content": "Write a poem about rain."}]]) == \
        ["alpha", "beta"]


def test_readme_python_example_runs(models, tmp_path, monkeypatch) -> None:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## Python API.*?```python\n(.*?)```", readme, re.S)
    assert block, "README has no Python API example"
    shutil.copytree(models.reward_dir, tmp_path / "runs" / "rm")
    shutil.copytree(models.router_dir, tmp_path / "runs" / "zooter")
    monkeypatch.chdir(tmp_path)
    exec(compile(block.group(1), "README.md", "exec"), {})


# ---------------------------------------------------------------- TRL preference rows

def test_trl_rows_without_id_or_domain_load(tmp_path) -> None:
    path = tmp_path / "trl.jsonl"
    path.write_text('{"prompt": "hi", "chosen": "hello!", "rejected": "go away"}\n'
                    '{"prompt": "hi", "chosen": "hello!", "rejected": "go away"}\n')
    a, b = read_pairs(path)
    assert a.id == b.id and a.id.startswith("sha256:") and a.domain == DEFAULT_DOMAIN


def test_trl_conversational_forms_explicit_and_implicit_prompt() -> None:
    q = [{"role": "user", "content": "What colour is the sky?"}]
    explicit = PreferencePair.model_validate({"prompt": q, "chosen": [{"role": "assistant", "content": "Blue."}],
                                              "rejected": [{"role": "assistant", "content": "Green."}]})
    implicit = PreferencePair.model_validate({"chosen": q + [{"role": "assistant", "content": "Blue."}],
                                              "rejected": q + [{"role": "assistant", "content": "Green."}]})
    for p in (explicit, implicit):
        assert (p.chosen, p.rejected) == ("Blue.", "Green.")
        assert [(m.role, m.content) for m in p.prompt] == [("user", "What colour is the sky?")]
    assert explicit.id == implicit.id


def test_hf_paths_work_from_the_cli_through_the_datasets_loader(tmp_path) -> None:
    import datasets
    from typer.testing import CliRunner

    from rewardroute.cli import app

    rows = [{"prompt": f"q{i}", "chosen": "good answer", "rejected": "bad"} for i in range(5)]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "ds"))
    res = CliRunner().invoke(app, ["data", "validate", f"hf://{tmp_path / 'ds'}:train", "--json"])
    assert res.exit_code == 0, res.output
    assert '"rows": 5' in res.output and "hf:/" in res.output
    res = CliRunner().invoke(app, ["data", "validate", f"hf://{tmp_path / 'nothing'}:train"])
    assert res.exit_code == 2 and "hf://" in res.output
