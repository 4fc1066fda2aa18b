"""The papers' behaviours on the embedded default, as README "What it learns" runs them (tools/what_it_learns.sh).

Slow: each is one or two default runs (60 steps, ~1.5 minutes each on a CPU), seed 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audio_thinker.cli import compose_run
from audio_thinker.eval.run import evaluate
from audio_thinker.train import train
from tests.helpers.tb import read_scalars

pytestmark = pytest.mark.slow
QUIET = ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "callbacks.export=null"]


def run(output_dir: Path, overrides: list[str]) -> Path:
    train(compose_run(output_dir, [*QUIET, *overrides]))
    return output_dir / "tensorboard"


def last(logs: Path, tag: str, n: int = 10) -> float:
    """Mean of the last `n` logged values (training scalars are noisy)."""
    values = [value for _, value in read_scalars(logs, tag)[-n:]]
    return sum(values) / len(values)


def test_cesar_ends_with_shorter_reasoning_than_rlvr_at_equal_accuracy(tmp_path):
    rlvr = run(tmp_path / "rlvr", ["callbacks.model_checkpoint=null"])
    cesar = run(tmp_path / "cesar", ["reward=cesar", "callbacks.model_checkpoint=null"])
    assert last(cesar, "think/length") < last(rlvr, "think/length") - 0.5  # measured: 10.8 vs 11.8 tokens
    assert read_scalars(cesar, "val/accuracy")[-1][1] >= read_scalars(rlvr, "val/accuracy")[-1][1] - 0.1


def test_the_trained_checkpoint_scales_above_the_untrained_model(tmp_path):
    run(tmp_path / "train", [])
    budgets = "eval.budgets=[0,4,8,16]"
    untrained = evaluate(compose_run(tmp_path / "untrained", [budgets], name="eval"))
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    trained = evaluate(compose_run(tmp_path / "trained", [budgets, f"eval.ckpt_path={ckpt}"], name="eval"))
    curves = {name: json.loads((tmp_path / name / "scaling.json").read_text()) for name in ("untrained", "trained")}
    assert trained["accuracy"] >= untrained["accuracy"] + 0.3, (untrained["accuracy"], trained["accuracy"])
    assert curves["trained"]["accuracy"][-1] > curves["untrained"]["accuracy"][-1]  # at the largest budget
