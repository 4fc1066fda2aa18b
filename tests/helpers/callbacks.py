"""Callbacks that test configs name by `_target_`: pauses, signals and faults at known steps, and a process record."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import lightning as L

from audio_thinker.callbacks.preemption import PreemptionCheckpoint


class PauseAtStep(L.Callback):
    """Touches `marker` and sleeps at the start of step `step`: the test kills the run at a known point."""

    def __init__(self, step: int, marker: str) -> None:
        self.step, self.marker = step, Path(marker)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            self.marker.touch()
            time.sleep(600)


class PauseUntilSignalled(L.Callback):
    """Touches `marker` at the start of step `step` and waits until the preemption callback got its signal."""

    def __init__(self, step: int, marker: str) -> None:
        self.step, self.marker = step, marker

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step != self.step:
            return
        preemption = next(cb for cb in trainer.callbacks if isinstance(cb, PreemptionCheckpoint))
        open(self.marker, "w").close()
        deadline = time.monotonic() + 120
        while preemption.received is None and time.monotonic() < deadline:
            time.sleep(0.05)


class SignalAt(L.Callback):
    """Sends signal `name` to this process at the start of Lightning batch `batch` (micro-batches counted from 0)."""

    def __init__(self, batch: int, name: str = "SIGUSR1") -> None:
        self.batch, self.signum, self.seen = batch, getattr(signal, name), 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.seen == self.batch:
            os.kill(os.getpid(), self.signum)  # a real signal, delivered as Slurm's or `kill`'s would be
        self.seen += 1


class SignalOnRank(SignalAt):
    """`SignalAt` on one rank only: the other ranks must stop at the same step anyway."""

    def __init__(self, batch: int, name: str, rank: int) -> None:
        super().__init__(batch, name)
        self.rank = rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_rank == self.rank:
            super().on_train_batch_start(trainer, pl_module, batch, batch_idx)


class RecordProcess(L.Callback):
    """Writes the id of the process that trained the run to `<run>/pid`."""

    def on_train_start(self, trainer, pl_module) -> None:
        Path(trainer.default_root_dir, "pid").write_text(str(os.getpid()))


class NaNLossOnRank(L.Callback):
    """Makes rank `rank`'s loss NaN on the first step."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_rank != self.rank or trainer.global_step != 0 or hasattr(self, "done"):
            return
        self.done, original = True, pl_module.loss_fn.forward

        def nan_loss(*args, **kwargs):
            out = original(*args, **kwargs)
            return out._replace(loss=out.loss * float("nan"))

        pl_module.loss_fn.forward = nan_loss
