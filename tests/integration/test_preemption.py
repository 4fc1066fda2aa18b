"""Preemption as a cluster does it: a signal from outside, a checkpoint, and the same command run again continues.

The in-process fast path (a signal mid-step, Slurm requeue, exact resume) is tests/unit/callbacks/test_preemption.py.
"""

from __future__ import annotations

import signal
import time

import lightning as L
import pytest
import torch

from audio_thinker.callbacks.preemption import PreemptionCheckpoint
from tests.conftest import FAST, FAST_SYNTHETIC
from tests.integration.test_cli import run_cli
from tests.integration.test_resume import cli, finish, logged, output_of, wait_for
from tests.integration.test_training import LENGTH_REWARD
from tests.unit.callbacks.test_preemption import SignalAt


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


class SignalOnRank(SignalAt):
    """`SignalAt` on one rank only: the other ranks must stop at the same step anyway."""

    def __init__(self, batch: int, name: str, rank: int) -> None:
        super().__init__(batch, name)
        self.rank = rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_rank == self.rank:
            super().on_train_batch_start(trainer, pl_module, batch, batch_idx)


@pytest.mark.slow
def test_sigterm_from_outside_then_the_same_command_continues_like_an_uninterrupted_run(tmp_path):
    reference, run = tmp_path / "reference", tmp_path / "run"
    uninterrupted = cli(reference)
    same_command = ["ckpt_path=last"]  # the first launch finds no checkpoint and starts fresh
    paused = tmp_path / "paused"
    first = cli(run, *same_command, "+callbacks.pause._target_=tests.integration.test_preemption.PauseUntilSignalled",
                "+callbacks.pause.step=5", f"+callbacks.pause.marker={paused}")  # fmt: skip
    wait_for(paused, first)
    first.send_signal(signal.SIGTERM)  # as `kill`, `scancel` or a Slurm preemption sends it
    assert first.wait(timeout=300) == 128 + signal.SIGTERM, output_of(first)
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6  # step 5 finished
    assert all(max(steps) == 5 for steps in logged(run).values())

    output = finish(cli(run, *same_command))
    finish(uninterrupted)
    assert f"Restoring states from the checkpoint path at {run / 'checkpoints' / 'last.ckpt'}" in output
    assert logged(run) == logged(reference)


@pytest.mark.slow
def test_a_signal_to_one_ddp_rank_stops_both_at_the_same_step_and_they_resume_together(tmp_path):
    common = [*FAST, *FAST_SYNTHETIC, "strategy=ddp", "trainer.devices=2", "trainer.max_steps=4", "optimizer.lr=1e-2",
              *LENGTH_REWARD, f"hydra.run.dir={tmp_path}", "ckpt_path=last", "callbacks.export=null",
              "+callbacks.fingerprint._target_=tests.integration.fingerprint.WeightFingerprint"]  # fmt: skip
    signal_rank1 = ["+callbacks.signal._target_=tests.integration.test_preemption.SignalOnRank",
                    "+callbacks.signal.batch=1", "+callbacks.signal.name=SIGUSR1",
                    "+callbacks.signal.rank=1"]  # fmt: skip
    stopped = run_cli("train", *common, *signal_rank1)
    assert stopped.returncode == 128 + signal.SIGUSR1, stopped.stderr[-4000:]
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2
    assert not list(tmp_path.glob("weights_rank*.pt"))  # neither rank reached the end of training

    resumed = run_cli("train", *common)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    rank0, rank1 = (torch.load(tmp_path / f"weights_rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["step"] == rank1["step"] == 4 and rank0["final"] == rank1["final"]
    restored = f"Restoring states from the checkpoint path at {tmp_path / 'checkpoints' / 'last.ckpt'}"
    assert restored in resumed.stdout + resumed.stderr
