"""Validation during training: greedy val/* at step 0 and every val_check_interval, without touching training."""

from __future__ import annotations

import pytest

from audio_thinker.jobs import ObjectiveError, objective_value
from audio_thinker.train import train
from tests.helpers.tb import read_scalars, scalar_tags

QUIET = ["callbacks.model_checkpoint=null", "callbacks.export=null", "rollout.max_new_tokens=16"]


def test_val_metrics_start_at_step_0_and_follow_the_interval(train_cfg, tmp_path, caplog):
    cfg = train_cfg(["trainer.max_steps=2", "trainer.val_check_interval=1", "data.val.size=2", *QUIET])
    with caplog.at_level("INFO"):
        metrics = train(cfg)
    logs = tmp_path / "tensorboard"
    assert [step for step, _ in read_scalars(logs, "val/accuracy")] == [0, 1, 2]  # x = optimizer steps taken
    tags = scalar_tags(logs)
    assert {"val/think_rate", "val/think_length", "val/accuracy_by_difficulty/easy"} <= tags
    # data.val.size=2 cycles through the recipe's two tasks once: each task's accuracy is one example's 0 or 1.
    per_task = {tag for tag in tags if tag.startswith("val/accuracy_by_task/")}
    assert per_task == {"val/accuracy_by_task/pitch_compare", "val/accuracy_by_task/loudness_compare"}
    assert all(read_scalars(logs, tag)[0][1] in (0.0, 1.0) for tag in per_task)
    assert read_scalars(logs, "val/examples")[0][1] == 2.0
    assert metrics["val/accuracy"] == read_scalars(logs, "val/accuracy")[-1][1]  # also in callback_metrics
    assert "held-out val/accuracy:" in caplog.text and "at step 0 ->" in caplog.text


def test_validating_leaves_the_training_run_unchanged(train_cfg, tmp_path):
    """Greedy answers draw no random numbers and the val loader has its own generator: same losses and rewards."""
    base = ["trainer.max_steps=3", "trainer.val_check_interval=1", "data.val.size=3", *QUIET]
    runs = {}
    for name, extra in (("with", []), ("without", ["validation=null"])):
        cfg = train_cfg([*base, *extra, f"logger.tensorboard.save_dir={tmp_path / name}"])
        train(cfg)
        runs[name] = {tag: read_scalars(tmp_path / name / "tensorboard", tag) for tag in ("loss/total", "reward/total")}
    assert len(runs["with"]["loss/total"]) == 3
    assert runs["with"] == runs["without"]
    assert not any(tag.startswith("val/") for tag in scalar_tags(tmp_path / "without"))


@pytest.mark.parametrize("steps", ["-1", "2"])
def test_only_a_whole_sanity_check_is_the_step_0_baseline(train_cfg, tmp_path, steps):
    cfg = train_cfg(
        [
            "trainer.max_steps=1",
            "trainer.val_check_interval=1",
            "data.val.size=6",
            "validation.batch_size=2",
            "+data.val_batch_size=2",
            f"trainer.num_sanity_val_steps={steps}",
            *QUIET,
        ]
    )
    train(cfg)
    steps_logged = [step for step, _ in read_scalars(tmp_path / "tensorboard", "val/accuracy")]
    assert steps_logged == ([0, 1] if steps == "-1" else [1])  # 2 of 3 batches would be no baseline


def test_a_sweep_trial_validates_its_final_weights_and_fails_without_a_final_validation(train_cfg, tmp_path):
    """A 2-step run under the recipe's interval of 20 validates before its first step only; the sweep objective
    (hparams_search configs add the callback) is then the final weights' accuracy, never a stale or absent one."""
    callback = "+callbacks.last._target_=audio_thinker.callbacks.final_validation.ValidateAfterLastStep"
    base = ["trainer.max_steps=2", "data.val.size=2", *QUIET]
    for name, extra in (("with", [callback]), ("without", [])):
        metrics = train(train_cfg([*base, *extra, f"logger.tensorboard.save_dir={tmp_path / name}"]))
        steps = [step for step, _ in read_scalars(tmp_path / name / "tensorboard", "val/accuracy")]
        if name == "with":
            assert steps == [0, 2]
            final = read_scalars(tmp_path / name / "tensorboard", "val/accuracy")[-1][1]
            assert objective_value(metrics, "val/accuracy") == final
        else:
            assert steps == [0]
            with pytest.raises(ObjectiveError, match="no validation ran after a training step"):
                objective_value(metrics, "val/accuracy")
