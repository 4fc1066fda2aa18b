"""Sweeps beyond one process: submitit (Slurm's launcher, run here with its local executor), the parallel local
launcher (joblib), an Optuna search over reward weights, and the Slurm launcher's sbatch script."""

from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path

import pytest
import yaml

from audio_thinker.eval.sweep import job_number, summarize_sweep
from tests.helpers.configs import FAST, FAST_SYNTHETIC, compose_train
from tests.helpers.runs import run_cli
from tests.helpers.tb import read_scalars


def needs(module: str, extra: str = "sweep"):
    """Skip when a launcher/sweeper plugin is not installed, saying how to install it."""
    found = importlib.util.find_spec(module) is not None
    return pytest.mark.skipif(not found, reason=f"{module} is not installed: pip install -e '.[{extra}]'")


SWEEP = [
    *FAST,
    *FAST_SYNTHETIC,
    "callbacks.model_checkpoint=null",
    "callbacks.export=null",
    "+callbacks.pid._target_=tests.helpers.callbacks.RecordProcess",
]
LENGTH = [
    "~reward.terms.format",
    "~reward.terms.accuracy",
    "+reward.terms.length._target_=tests.helpers.rewards.TextLengthReward",
]


def final_reward(run_dir: Path) -> float:
    """The run's last logged reward/total."""
    return read_scalars(run_dir / "tensorboard", "reward/total")[-1][1]


@pytest.mark.slow  # the fast path: the Optuna search below runs its trials through local_parallel
@pytest.mark.parametrize(
    "launcher",
    [
        pytest.param("local_parallel", marks=needs("hydra_plugins.hydra_joblib_launcher")),
        pytest.param("submitit_local", marks=needs("hydra_plugins.hydra_submitit_launcher")),
    ],
)
def test_a_two_run_sweep_runs_each_job_in_its_own_process_and_folder(launcher, tmp_path):
    result = run_cli(
        "train", "-m", f"hydra/launcher={launcher}", *SWEEP, *LENGTH, "loss.beta=0,0.04", f"hydra.sweep.dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr[-4000:]
    runs = [tmp_path / "0_loss.beta=0", tmp_path / "1_loss.beta=0.04"]  # named after what the sweep varies
    for run, beta in zip(runs, ("0", "0.04"), strict=True):
        assert [step for step, _ in read_scalars(run / "tensorboard", "reward/total")] == [0, 1]
        assert f"loss.beta={beta}" in (run / ".hydra" / "overrides.yaml").read_text()
    pids = {(run / "pid").read_text() for run in runs}
    assert len(pids) == 2  # two processes, not one after the other in the launching process
    summary = {run.name: run for run in summarize_sweep(tmp_path, tmp_path, last_n=1)}
    assert set(summary) == {"0", "1"} and summary["1"].overrides["loss.beta"] == "0.04"
    assert all(summary[str(job_number(run))].values["reward/total"] == pytest.approx(final_reward(run)) for run in runs)
    if launcher == "submitit_local":  # each job's return value: its objective, when logged (here validation ran
        for run in runs:  # before the first step only, and the basic sweeper reads no value, so no job fails over it)
            (result_file,) = _result_of(tmp_path, run)
            status, job = pickle.loads(result_file.read_bytes())
            assert status == "success" and job.return_value is None


def _result_of(sweep_dir: Path, run: Path) -> list[Path]:
    """The submitit result pickle of the job that wrote `run` (its job number starts the folder's name)."""
    found = []
    for result_file in (sweep_dir / ".submitit").glob("*/*_result.pkl"):
        status, job = pickle.loads(result_file.read_bytes())
        if job.hydra_cfg["hydra"]["job"]["num"] == job_number(run):
            found.append(result_file)
    return found


def final_accuracy(run_dir: Path) -> list[tuple[int, float]]:
    """The run's logged val/accuracy, (step, value) in step order."""
    return read_scalars(run_dir / "tensorboard", "val/accuracy")


@needs("hydra_plugins.hydra_optuna_sweeper")
@needs("hydra_plugins.hydra_joblib_launcher")
def test_an_optuna_search_of_three_parallel_trials_maximises_the_final_held_out_accuracy(tmp_path):
    # The three trials go to the launcher at once (sweeper.n_jobs) and run in two worker processes side by side.
    # A high learning rate and a reward weight that differs between trials: trained 2 steps, they answer differently.
    result = run_cli(
        "train",
        "-m",
        "hparams_search=cesar_weights",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.n_jobs=3",
        "hydra/launcher=local_parallel",
        *SWEEP,
        *LENGTH,
        "optimizer.lr=0.05",
        "+reward.terms.length.weight=interval(0.1, 2)",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    trials = sorted(p for p in tmp_path.iterdir() if (p / ".hydra").is_dir())
    assert [job_number(t) for t in trials] == [0, 1, 2]  # folders `<n>_<sampled weights>`
    assert all([step for step, _ in read_scalars(t / "tensorboard", "reward/total")] == [0, 1] for t in trials)
    assert len({(t / "pid").read_text() for t in trials}) == 2  # hydra.launcher.n_jobs: 2 on a machine without GPUs
    # The objective: held-out accuracy of each trial's final weights, validated after its last step (2) although
    # the interval (20) does not land there; never the reward whose weights the search moves.
    assert all([step for step, _ in final_accuracy(t)] == [0, 2] for t in trials)
    finals = {str(job_number(t)): final_accuracy(t)[-1][1] for t in trials}
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(finals.values()))  # maximised
    assert best["best_value"] not in [pytest.approx(final_reward(t)) for t in trials]
    best_trial = trials[int(max(finals, key=finals.get))]
    overrides = yaml.safe_load((best_trial / ".hydra" / "overrides.yaml").read_text())
    assert f"+reward.terms.length.weight={best['best_params']['+reward.terms.length.weight']}" in overrides
    assert "never logged" not in result.stderr + result.stdout and "objective" not in result.stderr
    summary = summarize_sweep(tmp_path, tmp_path, last_n=1)  # the last step alone: the objective's value
    assert {run.name: run.values["val/accuracy"] for run in summary} == pytest.approx(finals)


@needs("hydra_plugins.hydra_optuna_sweeper")
def test_a_search_ranking_by_validation_with_validation_off_fails_before_any_model_loads(tmp_path):
    result = run_cli(
        "train",
        "-m",
        "hparams_search=cesar_weights",
        "hydra.sweeper.n_trials=1",
        *SWEEP,
        "validation=null",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert result.returncode == 1
    assert "error: objective.metric=val/accuracy is measured by validation, which validation=null switches off" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr and not list(tmp_path.glob("*/tensorboard"))


@needs("hydra_plugins.hydra_submitit_launcher")
def test_the_slurm_launcher_writes_an_sbatch_script_with_the_requeue_signal(tmp_path, monkeypatch):
    import submitit
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\n")  # submitit only checks that srun exists
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    compose_train(
        tmp_path,
        [
            "hydra/launcher=slurm",
            "hydra.launcher.partition=gpu",
            "hydra.launcher.nodes=2",
            "hydra.launcher.gpus_per_node=8",
            f"hydra.sweep.dir={tmp_path}",
        ],
    )
    params = OmegaConf.to_container(HydraConfig.get().launcher, resolve=True)
    # As hydra-submitit-launcher hands them to submitit: its shared keys plain, the rest prefixed with `slurm_`.
    executor = submitit.AutoExecutor(cluster="slurm", folder=params.pop("submitit_folder"))
    shared = {
        "timeout_min",
        "cpus_per_task",
        "gpus_per_node",
        "tasks_per_node",
        "mem_gb",
        "nodes",
        "name",
        "stderr_to_stdout",
    }
    params.pop("_target_"), params.pop("max_num_timeout")
    executor.update_parameters(**{k if k in shared else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python -m submitit.core._submit x", "uid")
    for line in (
        "--partition=gpu",
        "--nodes=2",
        "--gpus-per-node=8",
        "--ntasks-per-node=8",
        "--signal=USR1@300",
        "--requeue",
        "--time=1440",
        "--mem=64GB",
    ):
        assert f"#SBATCH {line}\n" in script, script
    assert "USR2" not in script  # submitit's own signal would requeue without a checkpoint
