"""A progress bar that counts optimizer steps toward `trainer.max_steps` and shows the numbers GRPO users watch."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

# Shown when logged, in this order: the reward (the GRPO loss hovers near 0 by construction) and held-out accuracy.
SHOWN = ("reward/total", "val/accuracy", "think/rate", "loss/nonfinite_skipped")


class StepProgressBar(TQDMProgressBar):
    """One bar for the whole run: `step 12/100`, not Lightning's per-epoch `Epoch 0/-2` of an unbounded epoch count.

    Runs bounded by `trainer.max_steps` (the usual GRPO setting) count optimizer steps; others fall back to
    Lightning's per-epoch bar.
    """

    def on_train_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_start(trainer, *args)
        self.train_progress_bar.set_description("step")

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.max_steps <= 0:
            return super().on_train_epoch_start(trainer, *args)
        bar = self.train_progress_bar
        if bar.total != trainer.max_steps:  # once per run: epochs are invisible here
            bar.reset(total=trainer.max_steps)
            bar.initial = trainer.global_step  # a resumed run starts where it stopped
            bar.n = trainer.global_step
        bar.set_description("step")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.max_steps <= 0:
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        bar = self.train_progress_bar
        if bar.n != trainer.global_step:  # one tick per optimizer step, not per accumulated micro-batch
            bar.n = trainer.global_step
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            bar.refresh()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.max_steps <= 0:
            return super().on_train_epoch_end(trainer, pl_module)

    def get_metrics(self, trainer: L.Trainer, pl_module) -> dict[str, Any]:
        """The `SHOWN` metrics that have been logged, rounded for the eye."""
        metrics = trainer.callback_metrics
        return {key: f"{float(metrics[key]):.3g}" for key in SHOWN if key in metrics}
