"""Runs of the real CLI in fresh interpreters: one to completion (`run_cli`), or one in the background (`cli`) that
a test waits on, kills or resumes, and the scalars such a run logged."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers.configs import FAST, FAST_SYNTHETIC


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`audio-thinker ...` in a fresh interpreter (the same one running the tests)."""
    cmd = [sys.executable, "-m", "audio_thinker.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)


TAGS = ("reward/total", "loss/total", "loss/kl")


# 6 training examples in batches of 2: epochs of 3 steps, so step 4 is mid-epoch and step 6 ends an epoch.
# A length reward and a large learning rate: every step has a non-zero advantage, loss and KL that move.
RUN = [
    *FAST,
    *FAST_SYNTHETIC,
    "data.train.size=6",
    "trainer.max_steps=8",
    "optimizer.lr=1e-3",
    "callbacks.model_checkpoint.every_n_train_steps=2",
    "~reward.terms.format",
    "~reward.terms.accuracy",
    "+reward.terms.length._target_=tests.helpers.rewards.TextLengthReward",
]


def logged(run_dir: Path, files: set[Path] | None = None) -> dict[str, dict[int, float]]:
    """tag -> {step: the last value written for that step} over the run's (or only `files`') event files."""
    out: dict[str, dict[int, float]] = {}
    for events in sorted(Path(run_dir, "tensorboard").glob("events.out.tfevents.*")):
        if files is not None and events not in files:
            continue
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in set(TAGS) & set(accumulator.Tags()["scalars"]):
            out.setdefault(tag, []).extend((e.wall_time, e.step, e.value) for e in accumulator.Scalars(tag))
    return {tag: {step: value for _, step, value in sorted(points)} for tag, points in out.items()}


def cli(run_dir: Path, *overrides: str) -> subprocess.Popen:
    """`audio-thinker train` in a fresh interpreter, writing under `run_dir` (one thread: two run side by side).

    Its output goes to `<run_dir>.log` (appended), not a pipe that nobody reads while it runs.
    """
    cmd = [sys.executable, "-m", "audio_thinker.cli", "train", *RUN, *overrides, f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same in every run, so the arithmetic is the same
    with open(run_dir.with_suffix(".log"), "a") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def output_of(process: subprocess.Popen) -> str:
    """The tail of what the runs in `process`'s directory printed."""
    return Path(process.args[-1].removeprefix("hydra.run.dir=") + ".log").read_text()[-3000:]


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    """Poll until `path` exists; fail if `process` ends (or the time runs out) first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"the run ended before {path.name}:\n{output_of(process)}"
        assert time.monotonic() < deadline, f"no {path.name} after {timeout} s"
        time.sleep(0.05)


def finish(process: subprocess.Popen) -> str:
    """Wait for a run and return its output; fail on a non-zero exit."""
    process.wait(timeout=600)
    assert process.returncode == 0, output_of(process)
    return output_of(process)
