"""`rewardroute rm train / eval / score` end to end on a tiny slice of the real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardroute.cli import app
from rewardroute.data.readers import read_pairs
from rewardroute.io import write_jsonl_atomic
from rewardroute.reward import load_model
from rewardroute.data.sampling import cap_per_domain

runner = CliRunner()


def _slice(built: Path, split: str, n: int, out: Path) -> Path:
    pairs = [p for ps in cap_per_domain(read_pairs(built / "prefs" / f"{split}.jsonl"), n, 0).values() for p in ps]
    write_jsonl_atomic(out, pairs)
    return out


@pytest.fixture(scope="module")
def trained(built_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    train = _slice(built_data, "train", 4, tmp / "train.jsonl")
    valid = _slice(built_data, "valid", 2, tmp / "valid.jsonl")
    test = _slice(built_data, "test", 3, tmp / "test.jsonl")
    out = tmp / "rm"
    res = runner.invoke(app, ["rm", "train", "--arch", "single", "--train", str(train), "--valid", str(valid),
                              "--out", str(out), "--epochs", "1", "--max-length", "64", "--seed", "1",
                              "--set", "training.batch_size=8"])
    assert res.exit_code == 0, res.output
    return tmp, out, test


def test_train_writes_a_loadable_checkpoint(trained):
    _, out, _ = trained
    meta = json.loads((out / "config.json").read_text())
    assert meta["arch"] == "single"
    assert meta["config"]["backbone"]["max_length"] == 64
    assert meta["config"]["domains"] == ["chat", "code", "math", "safety", "summarization"]
    assert meta["extra"]["training"]["args"]["batch_size"] == 8
    assert load_model(out).arch == "single"


def test_eval_json_shape(trained):
    _, out, test = trained
    res = runner.invoke(app, ["rm", "eval", "--model", str(out), "--data", str(test), "--json"])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(obj["accuracy"]) == {"overall", "chat", "code", "math", "safety", "summarization"}
    assert obj["pairs"] == 15
    assert obj["params"]["total"] > 20_000_000 and obj["params"]["trainable"] == obj["params"]["total"]
    assert obj["pairs_per_second"] > 0
    assert all(0.0 <= v <= 1.0 for v in obj["accuracy"].values())


def test_eval_reports_intervals_fitted_baselines_and_the_margin(trained):
    tmp, out, test = trained
    res = runner.invoke(app, ["rm", "eval", "--model", str(out), "--data", str(test), "--json",
                              "--baselines-train", str(tmp / "train.jsonl"), "--bootstrap", "500"])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout.strip().splitlines()[-1])
    domains = {"chat", "code", "math", "safety", "summarization"}
    assert set(obj["baselines"]) == {"longer_wins", "length_rule", "surface_logreg"}
    assert set(obj["best_baseline"]) == domains and set(obj["best_baseline"].values()) <= set(obj["baselines"])
    assert obj["intervals"]["average"]["estimate"] == pytest.approx(obj["macro_accuracy"], abs=1e-4)
    for d in domains:
        iv = obj["intervals"][d]
        assert iv["estimate"] == pytest.approx(obj["accuracy"][d], abs=1e-4) and iv["low"] <= iv["estimate"] <= iv["high"]
    margin = obj["vs_best_baseline"]["average"]
    best_avg = sum(obj["baselines"][obj["best_baseline"][d]][d]["estimate"] for d in domains) / 5
    assert margin["estimate"] == pytest.approx(obj["macro_accuracy"] - best_avg, abs=2e-3)
    assert obj["claim"] == margin["claim"] and ("beats" in margin["claim"] or "no difference shown" in margin["claim"])
    assert obj["baselines_fitted_on"]["*"] == 20 and obj["bootstrap"]["resamples"] == 500
    # without a training file the only baseline is the one that needs none
    res = runner.invoke(app, ["rm", "eval", "--model", str(out), "--data", str(test), "--json"])
    obj = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(obj["baselines"]) == {"longer_wins"}
    assert all(obj["baselines"]["longer_wins"][d]["estimate"] == pytest.approx(obj["length_baseline"][d], abs=1e-4)
               for d in domains)
    res = runner.invoke(app, ["rm", "eval", "--model", str(out), "--data", str(test)])
    assert res.exit_code == 0 and "best baseline per domain" in res.output and "average: " in res.output


def test_score_adds_rewards_and_resumes(trained):
    tmp, out, test = trained
    scored = tmp / "scored.jsonl"
    res = runner.invoke(app, ["rm", "score", "--model", str(out), "--input", str(test), "--output", str(scored)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in scored.read_text().splitlines()]
    assert len(rows) == 15 and all("chosen_reward" in r and "rejected_reward" in r for r in rows)
    model = load_model(out)
    pairs = read_pairs(test)
    want = model.score([p.prompt for p in pairs], [p.chosen for p in pairs])
    assert [round(r["chosen_reward"], 5) for r in rows] == [round(x, 5) for x in want.tolist()]

    # an interrupted run left 2 finished rows: a re-run keeps them and scores only the rest
    partial = scored.with_name(scored.name + ".partial")
    kept = [dict(rows[0], chosen_reward=999.0), dict(rows[1], chosen_reward=999.0)]
    partial.write_text("".join(json.dumps(r) + "\n" for r in kept) + '{"torn": ')
    scored.unlink()
    res = runner.invoke(app, ["rm", "score", "--model", str(out), "--input", str(test), "--output", str(scored)])
    assert res.exit_code == 0, res.output
    again = [json.loads(line) for line in scored.read_text().splitlines()]
    assert [r["chosen_reward"] for r in again[:2]] == [999.0, 999.0]
    # the rest were scored in other batches (other padding): equal up to float rounding
    assert [{**r, "chosen_reward": round(r["chosen_reward"], 4), "rejected_reward": round(r["rejected_reward"], 4)}
            for r in again[2:]] == \
        [{**r, "chosen_reward": round(r["chosen_reward"], 4), "rejected_reward": round(r["rejected_reward"], 4)}
         for r in rows[2:]]
    assert not partial.exists()


def test_bad_rows_name_file_line_and_field(trained, tmp_path):
    _, out, test = trained
    lines = test.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    broken = json.loads(lines[2])
    del broken["chosen"]
    bad.write_text("\n".join([lines[0], lines[1], json.dumps(broken), "{oops", *lines[4:]]) + "\n")
    res = runner.invoke(app, ["rm", "eval", "--model", str(out), "--data", str(bad)])
    assert res.exit_code == 2
    assert f"{bad}:3 field 'chosen': missing" in " ".join(res.stderr.split())
    res = runner.invoke(app, ["rm", "eval", "--model", str(out), "--data", str(bad), "--skip-bad", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["pairs"] == 13
    assert "skipped 2 bad rows" in " ".join(res.stderr.split())


def test_clear_errors_for_wrong_paths_and_settings(trained, tmp_path):
    _, out, test = trained
    res = runner.invoke(app, ["rm", "eval", "--model", str(tmp_path), "--data", str(test)])
    assert res.exit_code == 2 and "no config.json" in res.stderr
    res = runner.invoke(app, ["rm", "train", "--arch", "nope", "--train", str(test), "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "unknown architecture 'nope'" in res.stderr
    res = runner.invoke(app, ["rm", "train", "--train", str(test), "--out", str(tmp_path / "x"),
                              "--set", "training.lr=-1"])
    assert res.exit_code == 2 and "lr" in res.stderr


def _leaf_commands(group=None, prefix=()):
    """Every runnable command of the CLI, as argv prefixes."""
    import typer.main
    group = group or typer.main.get_command(app)
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _leaf_commands(cmd, prefix + (name,))
        else:
            yield list(prefix + (name,))


@pytest.mark.parametrize("cmd", list(_leaf_commands()), ids=" ".join)
def test_every_command_has_help_with_examples(cmd):
    res = runner.invoke(app, [*cmd, "--help"])
    assert res.exit_code == 0
    assert "Examples" in res.output
