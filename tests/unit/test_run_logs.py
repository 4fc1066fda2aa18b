"""Scalars read back from each store a run's loggers write (TensorBoard, CSV, MLflow), as the tools read them:
tools/plot_runs.py and tools/summarize_sweep.py (through audio_thinker.eval.sweep)."""

from __future__ import annotations

import importlib.util

import pytest
from hydra.utils import instantiate

from audio_thinker.eval.sweep import summarize_sweep
from audio_thinker.loggers import finish_runs
from audio_thinker.run_logs import NoRunLogs, read_scalars
from tests.helpers.configs import compose_train
from tools import plot_runs

MLFLOW = importlib.util.find_spec("mlflow") is not None  # the [loggers] extra
LOGGED = {"reward/total": {0: 1.0, 1: 2.5}, "val/accuracy": {0: 0.5, 1: 0.75}, "scaling/accuracy@25": {1: 0.625}}


def log_run(run_dir, logger: str, scale: float = 1.0) -> None:
    """What `audio-thinker train logger=<logger>` writes for LOGGED (x `scale`), through the packaged logger config."""
    cfg = compose_train(run_dir, [f"logger={logger}"])
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text(f"- logger={logger}\n- +scale={scale}\n")
    writer = instantiate(cfg.logger[logger])
    for step in (0, 1):
        writer.log_metrics({tag: v[step] * scale for tag, v in LOGGED.items() if step in v}, step=step)
    writer.finalize("success")
    finish_runs([writer])


@pytest.mark.parametrize("logger", ["tensorboard", "csv"])  # MLflow's store, slower to open, in the next test
def test_each_loggers_store_reads_back_the_scalars_by_step(tmp_path, logger, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing lands in the directory the tests started from
    log_run(tmp_path / "run", logger)
    scalars = read_scalars(tmp_path / "run")
    assert {tag: scalars[tag] for tag in LOGGED} == LOGGED


def test_the_tools_read_csv_and_mlflow_runs_as_they_read_tensorboard_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    stores = ["tensorboard", "csv"] + (["mlflow"] if MLFLOW else [])
    for number, logger in enumerate(stores):
        log_run(tmp_path / "sweep" / f"{number}_logger={logger}", logger, scale=number + 1)
    runs = [f"{logger}={tmp_path / 'sweep' / f'{n}_logger={logger}'}" for n, logger in enumerate(stores)]
    assert plot_runs.main([*runs, "--tags", "val/accuracy", "--out", str(tmp_path / "runs.png")]) == 0
    printed = capsys.readouterr().out
    for number, logger in enumerate(stores):
        scale = number + 1
        assert f"val/accuracy | {logger}: {0.5 * scale:.3f} (step 0) -> {0.75 * scale:.3f} (step 1)" in printed
    summary = summarize_sweep(tmp_path / "sweep", last_n=1)
    assert [run.values["reward/total"] for run in summary] == [2.5 * (n + 1) for n in range(len(stores))]
    assert all(run.curve == ([25], [0.625 * (n + 1)]) for n, run in enumerate(summary))  # MLflow's tag too


def test_a_directory_without_any_store_says_which_ones_are_read(tmp_path):
    with pytest.raises(NoRunLogs, match=r"no logged scalars below it \(TensorBoard event files, csv/metrics.csv"):
        read_scalars(tmp_path)
