"""The console entry point as a user runs it: default run, TensorBoard tags, checkpoint, multirun."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import FAST, FAST_SYNTHETIC
from tests.tb import read_scalars, scalar_tags

CONTRACT_TAGS = {"reward/total", "reward/accuracy", "reward/format", "completion/length", "loss/kl",
                 "loss/clip_fraction", "think/rate"}  # fmt: skip


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`audio-thinker ...` in a fresh interpreter (the same one running the tests)."""
    cmd = [sys.executable, "-m", "audio_thinker.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)


def test_default_train_run_leaves_tensorboard_logs_and_a_checkpoint(tmp_path):
    result = run_cli("train", *FAST, *FAST_SYNTHETIC, "trainer.max_steps=3", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert scalar_tags(tmp_path / "tensorboard") >= CONTRACT_TAGS
    assert [step for step, _ in read_scalars(tmp_path / "tensorboard", "reward/total")] == [0, 1, 2]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / ".hydra" / "config.yaml").is_file()


def test_multirun_sweeps_beta_with_one_log_directory_per_run(tmp_path):
    result = run_cli("train", "-m", *FAST, *FAST_SYNTHETIC, "loss.beta=0,0.04", f"hydra.sweep.dir={tmp_path}",
                     "callbacks.model_checkpoint=null")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for run in ("0", "1"):
        assert read_scalars(tmp_path / run / "tensorboard", "reward/total"), f"run {run} logged no reward"
    assert "beta: 0.04" in (tmp_path / "1" / ".hydra" / "config.yaml").read_text()


@pytest.mark.parametrize("args", [[], ["--help"]])
def test_usage_without_a_command(args):
    result = run_cli(*args)
    assert result.returncode == 0 and "audio-thinker <command>" in result.stdout


def test_unknown_command_is_an_error():
    result = run_cli("trian")
    assert result.returncode == 2 and "commands:" in result.stderr
