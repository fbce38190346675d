"""A new user's first hour: a clean clone works on its own, and nothing is silently wrong."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardroute.cli import app
from rewardroute.data.schemas import Message, render_prompt

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="session")
def serve_models_dirs(tmp_path_factory):
    from support.serve_models import serve_models

    return serve_models(tmp_path_factory)


def _flat(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- a clone with nothing beside it

def test_a_fresh_clone_builds_its_data_with_nothing_beside_it(tmp_path) -> None:
    """`git clone` into an empty folder, then `data build` from inside the clone: the sources come
    from the clone's own datasets/, never from a folder next to it or from this checkout."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.fail("this test needs git and a git checkout: it clones the repository")
    empty = tmp_path / "empty"
    empty.mkdir()
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(empty / "rr")], check=True)
    clone = empty / "rr"
    assert sorted(p.name for p in empty.iterdir()) == ["rr"]
    env = {k: v for k, v in os.environ.items() if k != "REWARDROUTE_DATA"}
    env["PYTHONPATH"] = str(clone / "src")  # the clone's code, as its own editable install would be
    proc = subprocess.run([sys.executable, "-m", "rewardroute", "data", "build", "--out", "data"],
                          cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((clone / "data" / "SUMMARY.json").read_text())
    assert Path(summary["source_dir"]) == (clone / "datasets").resolve()
    assert str((clone / "datasets").resolve()) in _flat(proc.stdout + proc.stderr)
    assert summary["skipped"] == []
    assert all(summary["pairs"][d]["test"] > 0 for d in ("safety", "math", "chat", "code", "summarization"))


BESIDE = Path("..", "shared").as_posix()  # the folder beside the old checkouts (built, so this file does not match)


def test_no_file_refers_to_a_folder_beside_the_clone() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for rel in tracked:
        if rel.startswith("datasets/") or not rel.endswith((".py", ".md", ".toml", ".yaml", ".cfg")) \
                and rel not in ("Makefile", ".ci/run"):
            continue
        if BESIDE in (REPO / rel).read_text(encoding="utf-8", errors="replace"):
            offenders.append(rel)
    assert offenders == [], f"files that read from a folder beside the clone: {offenders}"


def test_every_shipped_source_has_its_licence_and_source_note() -> None:
    folders = [p for p in (REPO / "datasets").iterdir() if p.is_dir()]
    assert len(folders) >= 7
    for folder in folders:
        assert (folder / "LICENSE").is_file() and (folder / "SOURCE.md").is_file(), folder.name


def test_missing_sources_say_where_they_looked(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("REWARDROUTE_DATA", str(tmp_path / "nowhere"))
    res = runner.invoke(app, ["data", "build", "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert "nowhere" in _flat(res.output) and "REWARDROUTE_DATA" in _flat(res.output)


# ---------------------------------------------------------------- the build keeps what it finds

def test_data_build_refuses_a_non_empty_folder_without_overwrite(tmp_path) -> None:
    out = tmp_path / "data"
    (out / "prefs").mkdir(parents=True)
    keep = out / "prefs" / "train.jsonl"
    keep.write_text("precious\n")
    res = runner.invoke(app, ["data", "build", "--out", str(out), "--domains", "math", "--no-routing"])
    assert res.exit_code == 2, res.output
    assert "not empty" in _flat(res.output) and "--overwrite" in _flat(res.output)
    assert keep.read_text() == "precious\n"
    res = runner.invoke(app, ["data", "build", "--out", str(out), "--domains", "math", "--no-routing", "--overwrite"])
    assert res.exit_code == 0, res.output
    assert keep.read_text() != "precious\n"


def test_data_build_prints_and_records_its_source_folder(tmp_path) -> None:
    res = runner.invoke(app, ["data", "build", "--out", str(tmp_path / "d"), "--domains", "math", "--no-routing"])
    assert res.exit_code == 0, res.output
    where = str((REPO / "datasets").resolve())
    assert where in _flat(res.output)
    assert json.loads((tmp_path / "d" / "SUMMARY.json").read_text())["source_dir"] == where


def test_add_domain_help_builds_the_new_domain_into_its_own_folder() -> None:
    res = runner.invoke(app, ["rm", "add-domain", "--help"])
    example = next(line for line in res.output.splitlines() if "data build" in line)
    assert "--out data " not in example + " " and "--out stories" in example


# ---------------------------------------------------------------- one prompt, whatever its format

ASK = "Write a Python function that reverses a list."


def test_a_prompt_renders_the_same_as_a_string_as_messages_and_with_a_system_turn() -> None:
    as_messages = [Message(role="user", content=ASK)]
    with_system = [Message(role="system", content="You are a helpful assistant."), Message(role="user", content=ASK)]
    assert render_prompt(ASK) == render_prompt(as_messages) == render_prompt(with_system) == ASK
    dialogue = [Message(role="user", content="hi"), Message(role="assistant", content="hello"),
                Message(role="user", content=ASK)]
    assert render_prompt(dialogue) == f"User: hi\n\nAssistant: hello\n\nUser: {ASK}"


def test_the_router_sends_a_prompt_to_one_expert_whatever_its_format(serve_models_dirs) -> None:
    from rewardroute.router.model import load_router

    router = load_router(serve_models_dirs.router_dir)
    forms = [ASK, [Message(role="user", content=ASK)],
             [Message(role="system", content="Summarise politely."), Message(role="user", content=ASK)]]
    probs = router.probs(forms)
    assert (probs[0] == probs[1]).all() and (probs[0] == probs[2]).all()


# ---------------------------------------------------------------- settings and reports that do not lie

def test_a_set_key_outside_a_section_is_an_error_listing_valid_keys(tmp_path) -> None:
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(json.dumps({"id": "a", "prompt": "q", "chosen": "x", "rejected": "y", "domain": "d"}) + "\n")
    res = runner.invoke(app, ["rm", "train", "--train", str(pairs), "--out", str(tmp_path / "rm"), "--set", "lr=0.5"])
    assert res.exit_code == 2, res.output
    text = _flat(res.output)
    assert "'lr'" in text and "training.lr" in text and "model.backbone.max_length" in text
    res = runner.invoke(app, ["rm", "train", "--train", str(pairs), "--out", str(tmp_path / "rm"),
                              "--set", "training.lrr=0.5"])
    assert res.exit_code == 2 and "training.lrr" in _flat(res.output) and "training.lr" in _flat(res.output)
    assert not (tmp_path / "rm").exists()


def test_training_without_a_validation_set_reports_no_validation_score(tmp_path, toy_pairs) -> None:
    from rewardroute.io import write_jsonl_atomic

    train = tmp_path / "train.jsonl"
    write_jsonl_atomic(train, toy_pairs[:16])
    out = tmp_path / "rm"
    res = runner.invoke(app, ["rm", "train", "--train", str(train), "--out", str(out), "--epochs", "2",
                              "--max-length", "32", "--set", "training.batch_size=8"])
    assert res.exit_code == 0, res.output
    text = _flat(res.output)
    assert "valid accuracy" not in text and "valid=" not in text and "no validation set" in text
    training = json.loads((out / "config.json").read_text())["extra"]["training"]
    assert training["best_valid_accuracy"] is None and training["best_epoch"] == 2
    assert [h["valid"] for h in training["history"]] == [None, None]


# ---------------------------------------------------------------- the demo's last hint runs

def test_the_demo_writes_a_serve_config_for_what_it_trained(tmp_path, serve_models_dirs) -> None:
    from fastapi.testclient import TestClient

    from rewardroute.demo import DemoConfig, write_serve_config
    from rewardroute.serve.app import create_app
    from rewardroute.serve.config import check_paths, load_serve_config

    cfg = DemoConfig(out=tmp_path / "demo")
    rm_dir = cfg.out / "rm-single"
    shutil.copytree(serve_models_dirs.reward_dir, rm_dir)
    serve = load_serve_config(write_serve_config(cfg, [rm_dir]))
    check_paths(serve)
    with TestClient(create_app(serve)) as client:
        r = client.post("/v1/rewards", json={"model": "single", "input": [{"prompt": "2+2?", "response": "4"}]})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["data"][0]["reward"], float)
