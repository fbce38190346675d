"""CLI conventions a new user relies on: -h, --version, exit codes, examples printed as written."""

from __future__ import annotations

import click
import typer
from typer.testing import CliRunner

from rewardroute import __version__
from rewardroute.cli import app

runner = CliRunner()


def _leaf_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out += _leaf_paths(cmd, prefix + (name,))
        else:
            out.append(prefix + (name,))
    return out


def test_version_and_short_help() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"rewardroute {__version__}"
    for path in _leaf_paths(typer.main.get_command(app)):
        res = runner.invoke(app, [*path, "-h"])
        assert res.exit_code == 0 and "Usage:" in res.output, path


def test_examples_keep_their_square_brackets() -> None:
    res = runner.invoke(app, ["demo", "--help"])
    assert "'archs=[single]'" in res.output


def test_user_errors_exit_2_with_one_line() -> None:
    res = runner.invoke(app, ["rm", "eval", "--model", "/nonexistent/rm", "--data", "/nonexistent.jsonl"])
    assert res.exit_code == 2
    assert "Traceback" not in res.output and "error:" in res.output


def test_a_checkpoint_of_the_wrong_kind_says_what_it_is_and_which_command_takes_it(tmp_path) -> None:
    import json

    (tmp_path / "router").mkdir()
    (tmp_path / "router" / "config.json").write_text(json.dumps(
        {"format": "rewardroute.router", "version": 1, "config": {"meta": {"kind": "zooter"}}}))
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n")
    res = runner.invoke(app, ["rm", "eval", "--model", str(tmp_path / "router"), "--data", str(pairs)])
    text = " ".join(res.output.split())
    assert res.exit_code == 2
    assert "is a router (zooter)" in text and "router route" in text and "needs a reward model" in text


def test_rm_eval_writes_a_chart_of_the_model_beside_the_baselines(tmp_path, toy_pairs) -> None:
    from rewardroute.backbone import BackboneConfig
    from rewardroute.io import write_jsonl_atomic
    from rewardroute.reward import save_model
    from rewardroute.reward.single import SingleConfig, SingleRewardModel

    model = save_model(SingleRewardModel.build(SingleConfig(backbone=BackboneConfig(max_length=32))), tmp_path / "rm")
    write_jsonl_atomic(tmp_path / "pairs.jsonl", toy_pairs)
    res = runner.invoke(app, ["rm", "eval", "--model", str(model), "--data", str(tmp_path / "pairs.jsonl"),
                              "--baselines-train", str(tmp_path / "pairs.jsonl"), "--plot", str(tmp_path / "acc.png"),
                              "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "acc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rm_train_help_shows_the_defaults_the_settings_really_have() -> None:
    """The flags default to None (so files and --set can set them); their help shows the value the
    settings objects will use, and this test keeps the two in step."""
    from rewardroute.backbone import BackboneConfig
    from rewardroute.reward.reward_config import RewardTrainingConfig

    cmd = typer.main.get_command(app).commands["rm"].commands["train"]
    shown = {p.name: p.show_default for p in cmd.params}
    t, b = RewardTrainingConfig(), BackboneConfig()
    want = {"epochs": t.epochs, "seed": t.seed, "lr": t.lr, "batch_size": t.batch_size, "grad_accum": t.grad_accum,
            "device": t.device, "precision": t.precision, "max_length": b.max_length, "pooling": b.pooling,
            "backbone": b.name_or_path}
    assert {k: shown[k] for k in want} == {k: str(v) for k, v in want.items()}
