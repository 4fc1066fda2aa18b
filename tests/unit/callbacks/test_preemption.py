"""A signal mid-step: a checkpoint at the end of that optimizer step, a clean stop, and an exact resume."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from audio_thinker.callbacks.preemption import Preempted, PreemptionCheckpoint
from audio_thinker.train import train
from tests.conftest import compose_train
from tests.integration.test_resume import RUN, logged

# Two micro-batches per optimizer step, so a signal can arrive in the middle of one; 4 examples per step.
STEPS = [*RUN, "data.train.size=8", "trainer.max_steps=3", "trainer.accumulate_grad_batches=2",
         "callbacks.model_checkpoint.every_n_train_steps=100"]  # fmt: skip


class SignalAt(L.Callback):
    """Sends signal `name` to this process at the start of Lightning batch `batch` (micro-batches counted from 0)."""

    def __init__(self, batch: int, name: str = "SIGUSR1") -> None:
        self.batch, self.signum, self.seen = batch, getattr(signal, name), 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.seen == self.batch:
            os.kill(os.getpid(), self.signum)  # a real signal, delivered as Slurm's or `kill`'s would be
        self.seen += 1


def fake_scontrol(bin_dir: Path, record: Path) -> None:
    """An `scontrol` on PATH that writes its arguments to `record`."""
    bin_dir.mkdir()
    script = bin_dir / "scontrol"
    script.write_text(f'#!/bin/sh\necho "$@" >> {record}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_a_signal_mid_step_checkpoints_at_its_end_requeues_and_resumes_exactly(tmp_path, monkeypatch):
    train(compose_train(tmp_path / "full", STEPS))
    expected = logged(tmp_path / "full")
    fake_scontrol(tmp_path / "bin", tmp_path / "scontrol.log")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    run = tmp_path / "preempted"
    signal_at = ["+callbacks.signal._target_=tests.unit.callbacks.test_preemption.SignalAt",
                 "+callbacks.signal.batch=2"]  # fmt: skip
    with pytest.raises(Preempted) as stopped:  # batch 2 is the first micro-batch of the second optimizer step
        train(compose_train(run, [*STEPS, *signal_at]))
    assert stopped.value.code == 128 + signal.SIGUSR1
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2  # that step's end
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
    assert not (run / "export").exists()  # an unfinished run exports nothing
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # the handlers in force before training are back
    assert all(sorted(steps) == [0, 1] for steps in logged(run).values())  # both finished steps were logged

    monkeypatch.delenv("SLURM_JOB_ID")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # the requeued job: no ckpt_path, it resumes by itself
    train(compose_train(run, STEPS))
    assert logged(run) == expected  # the same numbers at every step as the run nobody stopped


def test_signal_names_are_checked():
    assert PreemptionCheckpoint("x", signals=["USR1", "SIGTERM", 2]).signals == [10, 15, 2]
    with pytest.raises(ValueError, match="unknown signal 'SIGNOPE'"):
        PreemptionCheckpoint("x", signals=["SIGNOPE"])


class FakeTrainer(SimpleNamespace):
    """What the callback reads of a trainer: one rank (reduce is the identity), checkpoints recorded."""

    def __init__(self, global_step: int, max_steps: int = 10) -> None:
        super().__init__(global_step=global_step, max_steps=max_steps, should_stop=False, saved=[],
                         strategy=SimpleNamespace(reduce=lambda tensor, reduce_op: tensor))  # fmt: skip

    def save_checkpoint(self, path) -> None:
        self.saved.append((Path(path), self.global_step))


def _batch_end(callback: PreemptionCheckpoint, trainer: FakeTrainer) -> None:
    callback.on_train_batch_end(trainer, SimpleNamespace(device="cpu"), None, None, 0)


def test_the_stop_waits_for_the_end_of_the_optimizer_step():
    callback = PreemptionCheckpoint("ckpts")
    callback._last_step = 3  # training started (or resumed) at step 3
    callback._on_signal(signal.SIGTERM, None)
    trainer = FakeTrainer(global_step=3)
    _batch_end(callback, trainer)  # a micro-batch that did not step the optimizer
    assert trainer.saved == [] and not trainer.should_stop
    trainer.global_step = 4  # the optimizer step is done
    _batch_end(callback, trainer)
    assert trainer.saved == [(Path("ckpts/last.ckpt"), 4)] and trainer.should_stop
    assert callback.stopped_by == signal.SIGTERM and not callback._requeue_job  # only SIGUSR1 requeues


def test_a_signal_during_the_last_step_lets_the_run_finish():
    callback = PreemptionCheckpoint("ckpts")
    callback._last_step = 9
    callback._on_signal(signal.SIGUSR1, None)
    trainer = FakeTrainer(global_step=10, max_steps=10)
    _batch_end(callback, trainer)
    assert trainer.saved == [] and not trainer.should_stop and callback.stopped_by is None
