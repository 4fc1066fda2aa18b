"""The live scaling callback leaves the training run as it found it, and logs its curve."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from audio_thinker.callbacks.scaling import ScalingCurveCallback
from audio_thinker.format.prompts import THINK


class RecordingLogger:
    """Collects what the callback sends to a logger."""

    def __init__(self) -> None:
        self.metrics: list[tuple[int, dict]] = []

    def log_metrics(self, metrics: dict, step: int) -> None:
        self.metrics.append((step, metrics))


def fake_run(policy, examples, step: int):
    trainer = SimpleNamespace(
        global_step=step, is_global_zero=True, loggers=[RecordingLogger()], datamodule=SimpleNamespace(val_set=examples)
    )
    return trainer, SimpleNamespace(policy=policy, device=torch.device("cpu"))


def test_measuring_restores_the_rng_and_train_mode_and_logs_every_tag(tiny_policy, val_examples):
    callback = ScalingCurveCallback(THINK, every_n_steps=2, budgets=[0, 4], max_examples=2, answer_tokens=4)
    trainer, module = fake_run(tiny_policy, val_examples, step=4)
    tiny_policy.train()
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    callback.on_train_batch_end(trainer, module, None, None, 0)
    assert torch.equal(torch.get_rng_state(), rng)  # rollouts after it sample exactly as without it
    assert tiny_policy.hf_model.training
    [(step, metrics)] = trainer.loggers[0].metrics
    assert step == 4
    assert set(metrics) == {
        "scaling/accuracy@0",
        "scaling/accuracy@4",
        "scaling/think_tokens@0",
        "scaling/think_tokens@4",
        "scaling/slope",
        "scaling/slope_stderr",
        "scaling/sweet_spot",
        "scaling/sweet_spot_accuracy",
    }
    assert metrics["scaling/think_tokens@0"] == 0 and 0 <= metrics["scaling/think_tokens@4"] <= 4
    # slope from two points: (acc@4 - acc@0) / 4 tokens
    assert metrics["scaling/slope"] == pytest.approx(
        (metrics["scaling/accuracy@4"] - metrics["scaling/accuracy@0"]) / 4
    )


def test_runs_only_every_n_steps_and_once_per_step(tiny_policy, val_examples):
    callback = ScalingCurveCallback(THINK, every_n_steps=2, budgets=[0, 2], max_examples=1, answer_tokens=2)
    logged = []
    for step in (1, 2, 2, 3):  # step 2 twice: gradient accumulation ends two batches on the same optimizer step
        trainer, module = fake_run(tiny_policy, val_examples, step)
        callback.on_train_batch_end(trainer, module, None, None, 0)
        logged += [s for s, _ in trainer.loggers[0].metrics]
    assert logged == [2]


def test_a_single_budget_is_refused():
    with pytest.raises(ValueError, match="at least two budgets"):
        ScalingCurveCallback(THINK, budgets=[32])
