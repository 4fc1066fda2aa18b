"""Stop cleanly when the cluster asks: a checkpoint at the end of the current optimizer step, then exit.

Slurm sends SIGUSR1 (`--signal=USR1@<seconds>`) before a job's time limit and SIGTERM when it preempts or cancels
it. Lightning's own SLURM handler writes its checkpoint inside the signal handler, in the middle of whatever step
is running, on each rank whenever the signal reaches it; here the handler only records the signal, and at the end
of the optimizer step every rank agrees (one all-reduce) and writes one ordinary checkpoint together, the same kind
the periodic checkpoints are, from which a resumed run continues exactly. The run then stops before the next step
(its last step's metrics are logged), requeues itself on Slurm when the signal asks for it, and exits with
128 + the signal number, so no launcher mistakes it for a finished run.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import lightning as L
import torch

log = logging.getLogger(__name__)


class Preempted(SystemExit):
    """Raised after the preemption checkpoint is written: the process exits with 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def slurm_job_id() -> str | None:
    """This Slurm job's id as `scontrol` names it (`<array job>_<task>` for an array task), or None off Slurm."""
    if array_job := os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID")


def requeue_slurm_job(job_id: str) -> None:
    """Put the job back in the queue; Slurm then ends this run and starts it again with SLURM_RESTART_COUNT + 1."""
    result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        log.error("scontrol requeue %s failed (%d): %s", job_id, result.returncode, result.stderr.strip())
    else:
        log.info("requeued Slurm job %s", job_id)


def _signal_number(name: str | int) -> int:
    """`SIGUSR1`, `USR1` or 10 -> 10, with a clear error for an unknown name."""
    if isinstance(name, int):
        return name
    key = name.upper() if name.upper().startswith("SIG") else f"SIG{name.upper()}"
    if not isinstance(getattr(signal, key, None), signal.Signals):
        raise ValueError(f"callbacks.preemption: unknown signal {name!r}; use names such as SIGUSR1 or SIGTERM")
    return int(getattr(signal, key))


class PreemptionCheckpoint(L.Callback):
    """On any of `signals`: write `<dirpath>/last.ckpt` at the end of the current optimizer step, then stop.

    `requeue`: the signals that also requeue the job on Slurm (`scontrol requeue`, from global rank 0, after the
    checkpoint is written). Resume with `ckpt_path=last` (a requeued or restarted job does so by itself).
    """

    def __init__(
        self, dirpath: str, signals: list[str] = ("SIGUSR1", "SIGTERM"), requeue: list[str] = ("SIGUSR1",)
    ) -> None:
        self.dirpath = Path(dirpath)
        self.signals = [_signal_number(s) for s in signals]
        self.requeue = {_signal_number(s) for s in requeue}
        self.received: int | None = None  # the first signal this rank got
        self.stopped_by: int | None = None  # the signal the ranks stopped for (after the checkpoint)
        self._requeue_job = False
        self._previous: dict[int, Any] = {}
        self._last_step = 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.received is None:
            self.received = signum
            log.warning("received %s: checkpoint and stop at the end of this step", signal.Signals(signum).name)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After Lightning's own signal setup, so these handlers are the ones in force while training runs.
        self._last_step = trainer.global_step
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._on_signal)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step == self._last_step:
            return  # inside an optimizer step (gradient accumulation): wait for its end
        self._last_step = trainer.global_step
        # Every rank takes part at every step: a signal that reached one rank stops them all at the same step.
        received = self.received or 0
        flags = torch.tensor([received, received in self.requeue], dtype=torch.int32, device=pl_module.device)
        signum, requeue = (int(v) for v in trainer.strategy.reduce(flags, reduce_op="max"))
        if not signum or 0 < trainer.max_steps <= trainer.global_step:
            return  # no signal, or it came during the last step: the run ends as usual (its own last.ckpt, export)
        path = self.dirpath / "last.ckpt"
        trainer.save_checkpoint(path)
        log.warning("%s: checkpoint at step %d written to %s", signal.Signals(signum).name, trainer.global_step, path)
        self.stopped_by, self._requeue_job = signum, bool(requeue)
        trainer.should_stop = True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Reached once the last step's metrics went to the loggers, and before on_train_end (nothing is exported
        # for a run that did not finish).
        if self.stopped_by is None:
            return
        job = slurm_job_id()
        if self._requeue_job and job is not None and trainer.is_global_zero:
            requeue_slurm_job(job)
        raise Preempted(self.stopped_by)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore()

    def _restore(self) -> None:
        """Put back the handlers that were in force before training."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}
