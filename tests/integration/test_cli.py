"""The console entry point as a user runs it: default run, TensorBoard tags, checkpoint, multirun."""

from __future__ import annotations

import csv

import pytest

from tests.helpers.configs import FAST, FAST_SYNTHETIC
from tests.helpers.runs import run_cli
from tests.helpers.tb import read_scalars, scalar_tags

CONTRACT_TAGS = {
    "reward/total",
    "reward/accuracy",
    "reward/format",
    "completion/length",
    "loss/kl",
    "loss/clip_fraction",
    "think/rate",
}


def test_default_train_run_leaves_tensorboard_logs_and_a_checkpoint(tmp_path):
    result = run_cli(
        "train", *FAST, *FAST_SYNTHETIC, "trainer.max_steps=3", f"hydra.run.dir={tmp_path}", "logger=[tensorboard,csv]"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Its first line says where the settings came from: the embedded model's recipe, less what FAST overrides.
    first = next(line for line in (result.stdout + result.stderr).splitlines() if "recipe" in line)
    assert "recipe tiny_qwen2_audio_synthetic applies" in first and "optimizer.lr=0.001" in first
    assert "overridden: data.batch_size=2 (recipe 8), rollout.group_size=2 (recipe 8)" in first
    assert scalar_tags(tmp_path / "tensorboard") >= CONTRACT_TAGS
    assert [step for step, _ in read_scalars(tmp_path / "tensorboard", "reward/total")] == [0, 1, 2]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / ".hydra" / "config.yaml").is_file()
    # The second logger gets the same scalars, the composed config and the completions table.
    with (tmp_path / "csv" / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["step"] for row in rows if row.get("reward/total")] == ["0", "1", "2"]
    assert "group_size: 2" in (tmp_path / "csv" / "hparams.yaml").read_text()
    with (tmp_path / "csv" / "samples" / "completions" / "step_000000.csv").open() as file:
        table = list(csv.DictReader(file))
    assert len(table) == 4 and {"question", "gold", "completion", "mode", "reward", "advantage"} <= set(table[0])
    assert "FutureWarning" not in result.stderr and "litlogger" not in result.stderr


def test_multirun_sweeps_beta_with_one_log_directory_per_run(tmp_path):
    result = run_cli(
        "train",
        "-m",
        *FAST,
        *FAST_SYNTHETIC,
        "loss.beta=0,0.04",
        f"hydra.sweep.dir={tmp_path}",
        "callbacks.model_checkpoint=null",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert runs == ["0_loss.beta=0", "1_loss.beta=0.04"]  # numbered, then named after what the sweep varies
    for run in runs:
        assert read_scalars(tmp_path / run / "tensorboard", "reward/total"), f"run {run} logged no reward"
    assert "beta: 0.04" in (tmp_path / runs[1] / ".hydra" / "config.yaml").read_text()


@pytest.mark.parametrize("args", [[], ["--help"]])
def test_usage_without_a_command(args):
    result = run_cli(*args)
    assert result.returncode == 0 and "audio-thinker <command>" in result.stdout


def test_unknown_command_is_an_error():
    result = run_cli("trian")
    assert result.returncode == 2 and "unknown command 'trian'" in result.stderr and "commands:" in result.stderr
