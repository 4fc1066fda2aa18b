"""Every step's scalars reach the logs exactly once, whenever a run is killed and resumed.

Two gaps open without `FlushLogsCallback`:
- TensorBoard buffers events for up to two minutes, so a kill would lose the steps before it: every logger is
  flushed before each training step.
- Lightning hands a step's metrics to the loggers after `on_train_batch_end`, where that step's checkpoint is
  written. A kill in between loses the step for good: the resumed run starts after it. So each checkpoint also
  carries its step's scalars (what the loggers already received for that step, such as the learning rate, plus
  what Lightning is about to log), and a resumed run writes them back before its first step. A step that
  validates has its checkpoint written after that validation (`callbacks.step_checkpoint`), which logs its `val/*`
  at the next x (x = steps taken): such a checkpoint carries those too (`later`).

The resumed run first tells each TensorBoard logger to purge events from that step on (a `SessionLog.START`, as
`SummaryWriter(purge_step=...)` writes), so what a killed run logged after its checkpoint is not shown twice.
TensorBoard then shows every step once. (A text sample logged at the checkpoint's step is purged with it.)
"""

from __future__ import annotations

import numbers
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.compat.proto.event_pb2 import Event, SessionLog


def numeric_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The entries of `metrics` that are one number (a Python number or a one-element tensor or array), as floats.

    A logger's `log_metrics` also carries media: Lightning's `WandbLogger.log_table` and `log_image` pass a
    `wandb.Table` or a list of `wandb.Image` through it. Those are the logger's to write, not scalars to replay.
    """
    return {name: float(value) for name, value in metrics.items() if _is_one_number(value)}


def _is_one_number(value: Any) -> bool:
    """A real Python or numpy number, or a tensor or array holding exactly one."""
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and not value.is_complex()
    if isinstance(value, np.ndarray):
        return value.size == 1 and value.dtype.kind in "biuf"
    return isinstance(value, numbers.Real)


class FlushLogsCallback(L.Callback):
    """Flushes the loggers before every step and carries the checkpointed step's scalars across a resume."""

    def __init__(self) -> None:
        self._received: dict[int | None, dict[str, float]] = {}  # step -> what the loggers got, this step on
        self._pending: dict[str, Any] = {}  # the step being checkpointed: {"step", "metrics"}
        self._replay: dict[str, Any] = {}  # loaded from a checkpoint, written back at train start
        self._wrapped: set[int] = set()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for logger in trainer.loggers:
            if id(logger) not in self._wrapped:
                self._wrapped.add(id(logger))
                logger.log_metrics = self._recording(logger.log_metrics)

    def _recording(self, log_metrics):
        """`log_metrics` that also remembers what the current step received (callbacks log straight to loggers)."""

        def log_and_record(metrics: dict[str, Any], step: int | None = None) -> None:
            self._received.setdefault(step, {}).update(numeric_scalars(metrics))
            log_metrics(metrics, step)  # all of it: W&B's log_table / log_image send their media this way

        return log_and_record

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._pending = {}
        step = trainer.fit_loop.epoch_loop._batches_that_stepped  # this batch's x; earlier ones are on disk now
        self._received = {x: got for x, got in self._received.items() if x is not None and x >= step}
        for logger in trainer.loggers:
            logger.save()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Runs before any checkpoint is written (Lightning orders checkpoint callbacks last).
        loop = trainer.fit_loop
        if loop._should_accumulate():
            return
        step = loop.epoch_loop._batches_that_stepped  # the step Lightning will log this batch's metrics at
        metrics = dict(self._received.get(step, {}))
        connector = trainer._logger_connector  # no public accessor for the metrics about to be logged
        if connector.should_update_logs:
            metrics.update({name: float(value) for name, value in connector.metrics["log"].items()})
            metrics.setdefault("epoch", float(trainer.current_epoch))  # as Lightning adds it
        self._pending = {"step": step, "metrics": metrics}

    def state_dict(self) -> dict[str, Any]:
        if not self._pending:
            return {}
        # Written after the step's validation (StepCheckpoint), the loggers have had the step's scalars and the
        # validation's, at the next x: all of it goes into the checkpoint.
        step = self._pending["step"]
        metrics = {**self._received.get(step, {}), **self._pending["metrics"]}
        later = {x: dict(got) for x, got in sorted(self._received.items()) if x is not None and x > step and got}
        return {"step": step, "metrics": metrics, "later": later}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._replay = dict(state_dict)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._replay:
            return
        step, metrics = int(self._replay["step"]), self._replay["metrics"]
        later = {int(x): got for x, got in self._replay.get("later", {}).items()}  # older checkpoints: none
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger) and trainer.is_global_zero:
                start = Event(step=step, session_log=SessionLog(status=SessionLog.START))
                logger.experiment.file_writer.add_event(start)  # TensorBoard drops older events from `step` on
            for x, got in [(step, metrics), *sorted(later.items())]:
                if got:
                    logger.log_metrics(got, x)
            logger.save()
        self._replay = {}
