"""Periodic checkpoints written after the validation of their own step, so they carry its `val/*` scalars.

Lightning runs a step's validation after `on_train_batch_end`, where `ModelCheckpoint` writes that step's
checkpoint. With checkpoints and validation on the same steps (the default config: both every 20), a kill between
the two lost the step's validation for good: the resumed run starts after the step and does not validate it again,
and its loggers drop what the killed run logged from the checkpoint's step on (`FlushLogsCallback`). So a step
that validates has its checkpoint written at the end of that validation instead (Lightning's own `restarted on
last` resume point: the resumed run neither repeats the step nor the validation), once the loggers have received
the `val/*` scalars that `FlushLogsCallback` then carries in the checkpoint.

A validation Lightning adds only because the run is being stopped early (a preemption signal) is not waited for:
the uninterrupted run has none there. The last step of a run that validates at its end is.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

log = logging.getLogger(__name__)


class StepCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` (every option as Lightning's) whose checkpoint of a validating step follows the validation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._after_validation = False  # this step's save waits for the validation Lightning runs next

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if _validation_follows(trainer):
            self._after_validation = True
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if self._after_validation:
            self._after_validation = False
            # The decision Lightning would have made after the batch, made now: same step, same rules.
            super().on_train_batch_end(trainer, pl_module, None, None, 0)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx) -> None:
        if self._after_validation:  # not expected: the validation `_validation_follows` foresaw did not run
            self._after_validation = False
            log.warning(
                "step %d: the validation expected after it did not run; its checkpoint was not written",
                trainer.global_step,
            )

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._after_validation:  # likewise; at the end of training the checkpoint is still the step's own
            self._after_validation = False
            super().on_train_batch_end(trainer, pl_module, None, None, 0)
        super().on_train_end(trainer, pl_module)


def _validation_follows(trainer: L.Trainer) -> bool:
    """Whether Lightning validates right after the batch that just ended, by its own rule (not for an early stop)."""
    if trainer.sanity_checking or not trainer.enable_validation:
        return False
    loop = trainer.fit_loop.epoch_loop
    if trainer._val_check_time_interval is not None:
        return False  # a wall-clock interval: the answer could change before Lightning asks
    stopping = trainer.should_stop
    ends_here = 0 < trainer.max_steps <= trainer.global_step
    trainer.should_stop = stopping and ends_here  # a stop requested mid-run (preemption) forces no wait
    try:
        scheduled = loop._should_check_val_fx(trainer.fit_loop._data_fetcher)
    finally:
        trainer.should_stop = stopping
    if not scheduled:
        return False
    loop.val_loop.setup_data()  # what its run does first (idempotent): then `skip` says whether it has batches
    return not loop.val_loop.skip
