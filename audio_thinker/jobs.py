"""What a training job needs from the launcher that started it: its objective, its GPU, and whether to resume.

- `objective_value`: the number `audio-thinker train` returns, so Hydra sweepers (Optuna) can optimise a run
  (`check_objective` checks before training that the run will measure it).
- `gpu_of_its_own`: jobs that a local parallel launcher (joblib) runs side by side on one machine each train on
  one GPU of their own, held with a file lock while the job runs.
- `resume_path`: a job that Slurm requeued or torchrun restarted continues from its last checkpoint.
- `set_cpu_threads`: how many threads torch's CPU kernels use (the config's `cpu_threads`).
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from omegaconf import OmegaConf

log = logging.getLogger(__name__)


# -- CPU threads -------------------------------------------------------------------------------------------------
def set_cpu_threads(threads: int | str | None) -> None:
    """Use `threads` threads for torch's CPU kernels (None: torch's default, one per core).

    The embedded tiny models gain nothing from more than one, and on a machine whose cores are busy with other
    work, OpenMP threads that spin-wait for each other made greedy generation ~50x slower (2 threads, load 4 on 2
    cores: 7.7 s instead of 0.16 s for 16 prompts x 48 tokens).
    """
    if threads is None:
        return
    if int(threads) < 1:
        raise ValueError(f"cpu_threads must be >= 1 (or null for torch's default), got {threads!r}")
    import torch

    torch.set_num_threads(int(threads))


# -- the objective a sweeper optimises ----------------------------------------------------------------------------
class ObjectiveError(ValueError):
    """A sweep trial's objective cannot be measured or read: the sweeper would rank the trial on nothing."""


# Hydra's own sweeper (plain `-m`) runs every job and reads no return value; others (Optuna) rank jobs by it.
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def ranks_jobs(sweeper: Mapping) -> bool:
    """Whether the multirun's sweeper (`hydra.sweeper`) ranks its jobs by their objective (Optuna does)."""
    return sweeper.get("_target_") != BASIC_SWEEPER


def check_objective(cfg: Mapping) -> None:
    """Before a ranked trial trains: a `val/*` objective needs validation switched on and a validation set.

    Raised here, not after the trial's training, so the first trial fails in seconds instead of the last.
    """
    metric = cfg["objective"]["metric"]
    if not str(metric).startswith("val/"):
        return
    if not cfg.get("validation"):
        raise ObjectiveError(
            f"objective.metric={metric} is measured by validation, which validation=null switches off: keep "
            "validation on (the default) for a search, or rank trials by another logged metric (objective.metric=...)"
        )
    if cfg["data"].get("val") is None:
        raise ObjectiveError(f"objective.metric={metric} is measured on data.val, which is null: give the search one")


def objective_value(metrics: Mapping[str, float], metric: str) -> float:
    """The final value of `metric` (e.g. `val/accuracy`): what a sweeper ranks the run by.

    There is no fallback: a reward in its place would rank trials by the very weights a reward search moves.
    A missing or non-finite value is an `ObjectiveError` naming the tags that were logged.
    """
    if metric not in metrics:
        why = (
            " (no validation ran after a training step: only before the first, if at all. hparams_search configs "
            "add callbacks.validate_after_last_step, which validates the final weights; add it to your own "
            "search's runs too)"
            if metric.startswith("val/")
            else ""
        )
        raise ObjectiveError(
            f"objective: objective.metric={metric!r} was not logged by the end of the run{why}; logged tags: "
            f"{sorted(metrics)}. Rank trials by one of them with objective.metric=<tag>."
        )
    value = float(metrics[metric])
    if not math.isfinite(value):
        raise ObjectiveError(f"objective: the final {metric} is {value}; a sweeper cannot rank a run on it")
    return value


# -- one GPU per job on a shared machine --------------------------------------------------------------------------
# Launchers whose jobs run side by side on this machine, without a GPU of their own (submitit and Slurm give
# each job its own devices).
SHARED_MACHINE_LAUNCHERS = ("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",)
LOCK_DIR = Path(tempfile.gettempdir()) / "audio_thinker_gpu_locks"
_pinned: str | None = None  # the GPU this process's CUDA is bound to, once a job has picked it


def visible_gpus() -> list[str]:
    """The GPUs this process may use (CUDA_VISIBLE_DEVICES, else all), found without initialising CUDA."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip()]
    import torch  # NVML counts the devices without creating a CUDA context

    return [str(i) for i in range(torch.cuda.device_count())]


def parallel_jobs() -> int:
    """How many jobs a local parallel sweep runs at once: one per GPU, or 2 on a machine without GPUs."""
    return len(visible_gpus()) or 2


# `${parallel_jobs:}` in configs/hydra/launcher/local_parallel.yaml (registered wherever a job may resolve it).
OmegaConf.register_new_resolver("parallel_jobs", parallel_jobs, replace=True)


def claim_gpu(gpus: list[str], lock_dir: Path | None = None, wait_s: float | None = None) -> tuple[str, int]:
    """Lock the first free GPU of `gpus` (a lock file each, in `lock_dir` or LOCK_DIR, machine-wide) and return it
    with the open lock's descriptor.

    Waits for one to free up (polling every second; `wait_s` bounds the wait). The lock is released when the
    descriptor is closed, or when the process exits however it exits, so a crashed job never keeps its GPU.
    """
    lock_dir = lock_dir or LOCK_DIR
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = None if wait_s is None else time.monotonic() + wait_s
    waiting_logged = False
    while True:
        for gpu in gpus:
            fd = os.open(lock_dir / f"gpu-{re.sub(r'[^A-Za-z0-9_.-]', '_', gpu)}.lock", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return gpu, fd
            except BlockingIOError:
                os.close(fd)
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"no free GPU among {gpus} after {wait_s} s (locks in {lock_dir})")
        if not waiting_logged:
            log.info("all GPUs %s are taken by other jobs; waiting for one (locks in %s)", gpus, lock_dir)
            waiting_logged = True
        time.sleep(1.0)


@contextmanager
def gpu_of_its_own() -> Iterator[str | None]:
    """Run the job inside on one free GPU, which only it uses meanwhile (CUDA_VISIBLE_DEVICES); None without GPUs.

    The first job of a process picks any free GPU, before CUDA is initialised; the process's later jobs (a joblib
    worker runs several) wait for that same GPU, since CUDA cannot move once initialised. The GPU is released when
    the job ends, so jobs beyond the GPU count wait for a free one instead of sharing it.
    """
    global _pinned
    gpus = [_pinned] if _pinned is not None else visible_gpus()
    if not gpus:
        yield None
        return
    gpu, lock = claim_gpu(gpus)
    try:
        if _pinned is None:
            _pinned = gpu
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
            log.info("this job runs on GPU %s (of %s)", gpu, ",".join(gpus))
        yield gpu
    finally:
        os.close(lock)


# -- resuming a restarted job -------------------------------------------------------------------------------------
RESTART_COUNTERS = ("SLURM_RESTART_COUNT", "TORCHELASTIC_RESTART_COUNT")


def restarted() -> str | None:
    """The environment variable saying this job was requeued (Slurm) or restarted (torchrun), if any."""
    return next((name for name in RESTART_COUNTERS if int(os.environ.get(name) or 0) > 0), None)


def resume_path(ckpt_path: str | None) -> str | None:
    """`ckpt_path` (a `checkpoint-<step>` folder as its step's `.ckpt`), or "last" (this run directory's newest
    checkpoint) when a restarted job gave none."""
    if ckpt_path is None and (counter := restarted()):
        log.info("%s=%s: resuming from this run's last checkpoint", counter, os.environ[counter])
        return "last"
    from audio_thinker.checkpoints.hf_folders import lightning_checkpoint

    return lightning_checkpoint(ckpt_path)  # a checkpoint-<step> folder: its step's Lightning checkpoint
