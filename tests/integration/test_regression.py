"""Fixed-seed regression: the default run's first steps, recorded before the rollout engine refactor.

The values below were logged by the code as it was before one generation per optimizer step (commit 8dc096e):
with accumulation 1, one rank and num_iterations 1 nothing about the numbers may change.
"""

from __future__ import annotations

import lightning as L
import pytest
from hydra.utils import instantiate
from omegaconf import open_dict

from audio_thinker.train import build_module, build_trainer

# (loss/total, reward/total, loss/kl) per step: 3 steps, seed 0, B=2, G=4, 48 new tokens, 8 synthetic examples.
# `dapo_kl` covers the frozen reference copy, the KL term and token-level aggregation; `lora` the adapter-off reference.
RECORDED = {
    "dapo_kl": (
        ["loss=dapo", "loss.beta=0.04"],
        [
            (-0.10020298510789871, 1.375, 0.0),
            (-0.17662867903709412, 1.25, 3.058701622649096e-05),
            (-0.09730833023786545, 0.875, 1.096429696190171e-05),
        ],
    ),
    "lora": (
        ["quant=lora", "optimizer.lr=1e-3"],
        [
            (-1.4901161193847656e-08, 1.5, 0.0),
            (1.3083219528198242e-05, 1.125, 0.0003268748987466097),
            (1.3142824172973633e-05, 1.375, 0.00032954971538856626),
        ],
    ),
}


class StepRecorder(L.Callback):
    """(loss/total, reward/total, loss/kl) after every optimizer step."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        metrics = trainer.callback_metrics
        self.rows.append(tuple(float(metrics[k]) for k in ("loss/total", "reward/total", "loss/kl")))


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_default_run_first_steps_match_recorded_values(train_cfg, name):
    overrides, expected = RECORDED[name]
    cfg = train_cfg(["trainer.max_steps=3", "rollout.group_size=4", "rollout.max_new_tokens=48", *overrides])
    with open_dict(cfg):
        cfg.callbacks, cfg.logger = None, None
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    module, trainer = build_module(cfg), build_trainer(cfg)
    recorder = StepRecorder()
    trainer.callbacks.append(recorder)
    trainer.fit(module, datamodule=datamodule)
    assert len(recorder.rows) == len(expected)
    for step, (got, want) in enumerate(zip(recorder.rows, expected, strict=True)):
        assert got == pytest.approx(want, abs=1e-6), f"{name} step {step}: {got} != {want}"
