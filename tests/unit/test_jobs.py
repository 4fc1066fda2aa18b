"""What a launched job needs: its objective, one GPU of its own, and resuming when it was restarted."""

from __future__ import annotations

import math
import os

import pytest
import torch
from omegaconf import OmegaConf

from audio_thinker import jobs


def test_the_objective_is_the_metric_with_no_fallback_to_a_reward():
    assert jobs.objective_value({"val/accuracy": 0.75, "reward/total": 1.5}, "val/accuracy") == 0.75
    # A reward in its place would rank a reward-weight search by the weights it moves: the trial fails instead.
    with pytest.raises(jobs.ObjectiveError, match=r"'val/accuracy' was not logged .*validate_after_last_step"):
        jobs.objective_value({"reward/total": 1.5}, "val/accuracy")


def test_an_objective_never_logged_names_the_logged_tags():
    with pytest.raises(ValueError, match=r"objective\.metric='loss/x'.*logged tags: \['loss/kl', 'reward/total'\]"):
        jobs.objective_value({"reward/total": 1.0, "loss/kl": 0.1}, "loss/x")


def test_a_non_finite_objective_is_an_error():
    with pytest.raises(jobs.ObjectiveError, match="val/accuracy is nan"):
        jobs.objective_value({"val/accuracy": math.nan}, "val/accuracy")


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"validation": {"batch_size": 16}, "data": {"val": {"size": 4}}}, None),
        ({"validation": None, "data": {"val": {"size": 4}}}, "validation=null switches off"),
        ({"validation": {"batch_size": 16}, "data": {"val": None}}, "data.val, which is null"),
    ],
)
def test_a_val_objective_needs_validation_and_a_validation_set_before_training(settings, error):
    cfg = OmegaConf.create({"objective": {"metric": "val/accuracy"}, **settings})
    if error is None:
        jobs.check_objective(cfg)
    else:
        with pytest.raises(jobs.ObjectiveError, match=error):
            jobs.check_objective(cfg)
    jobs.check_objective(OmegaConf.merge(cfg, {"objective": {"metric": "reward/accuracy"}}))  # not validation's


def test_only_sweepers_other_than_hydras_basic_one_rank_jobs():
    assert not jobs.ranks_jobs({"_target_": jobs.BASIC_SWEEPER})
    assert jobs.ranks_jobs({"_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"})


def test_each_claim_gets_a_different_gpu_until_one_is_released(tmp_path):
    gpus = ["0", "1"]
    first, second = jobs.claim_gpu(gpus, tmp_path), jobs.claim_gpu(gpus, tmp_path)
    assert (first[0], second[0]) == ("0", "1")
    with pytest.raises(TimeoutError, match=r"no free GPU among \['0', '1'\]"):
        jobs.claim_gpu(gpus, tmp_path, wait_s=0)
    os.close(first[1])  # the job on GPU 0 ends
    third = jobs.claim_gpu(gpus, tmp_path, wait_s=0)
    assert third[0] == "0"
    for _, fd in (second, third):
        os.close(fd)


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3, 5")
    assert jobs.visible_gpus() == ["3", "5"]
    assert jobs.parallel_jobs() == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,4,6")
    assert OmegaConf.create({"n_jobs": "${parallel_jobs:}"}).n_jobs == 3  # the local_parallel launcher's default
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert jobs.visible_gpus() == [] and jobs.parallel_jobs() == 2  # no GPUs: two CPU runs at once


def test_a_job_holds_a_free_gpu_while_it_runs_and_later_jobs_of_its_process_reuse_it(monkeypatch, tmp_path):
    monkeypatch.setattr(jobs, "LOCK_DIR", tmp_path)
    monkeypatch.setattr(jobs, "_pinned", None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    other_job = jobs.claim_gpu(["0", "1"])  # another process trains on GPU 0
    with jobs.gpu_of_its_own() as gpu:
        assert gpu == "1" and os.environ["CUDA_VISIBLE_DEVICES"] == "1"
        with pytest.raises(TimeoutError):
            jobs.claim_gpu(["0", "1"], wait_s=0)  # both GPUs busy
    os.close(other_job[1])
    gpu, lock = jobs.claim_gpu(["1"], wait_s=0)  # released when the job ended
    os.close(lock)
    assert jobs._pinned == "1"  # the next job of this process must use GPU 1 again, even with GPU 0 free


def test_without_gpus_a_job_holds_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(jobs, "LOCK_DIR", tmp_path)
    monkeypatch.setattr(jobs, "_pinned", None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with jobs.gpu_of_its_own() as gpu:
        assert gpu is None and not list(tmp_path.iterdir())


@pytest.mark.parametrize("counter", ["SLURM_RESTART_COUNT", "TORCHELASTIC_RESTART_COUNT"])
def test_a_restarted_job_resumes_from_last(monkeypatch, counter):
    for name in jobs.RESTART_COUNTERS:
        monkeypatch.delenv(name, raising=False)
    assert jobs.resume_path(None) is None
    monkeypatch.setenv(counter, "0")
    assert jobs.resume_path(None) is None  # the first launch
    monkeypatch.setenv(counter, "1")
    assert jobs.resume_path(None) == "last"
    assert jobs.resume_path("runs/a/step000010.ckpt") == "runs/a/step000010.ckpt"  # an explicit choice wins


def test_cpu_threads_are_set_and_a_bad_count_is_refused():
    before = torch.get_num_threads()
    try:
        jobs.set_cpu_threads("1")  # as ${oc.env:OMP_NUM_THREADS,1} gives it
        assert torch.get_num_threads() == 1
        jobs.set_cpu_threads(None)  # torch's default: left alone
        assert torch.get_num_threads() == 1
        with pytest.raises(ValueError, match="cpu_threads must be >= 1"):
            jobs.set_cpu_threads(0)
    finally:
        torch.set_num_threads(before)
