"""The scalars a training run logged, read back from whichever store its loggers wrote below the run directory.

- `logger=tensorboard`: event files (`tensorboard/events.out.tfevents.*`);
- `logger=csv`: `csv/metrics.csv` (one row per step and source, blank cells elsewhere);
- `logger=mlflow`: the SQLite store `mlflow.db`, through MLflow's own client (needs the `[loggers]` extra).

A run logged to several stores (`logger=[tensorboard,csv]`) reads as one: they hold the same values. A step
logged twice (a resumed run) keeps the later value. MLflow drops characters from metric names that it does not
allow (`scaling/accuracy@25` is stored as `scaling/accuracy25`); names are returned as the store has them.
`logger=wandb` runs are read in W&B itself (`wandb sync`, then its web pages).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from pathlib import Path

Series = dict[str, dict[int, float]]  # tag -> {step: value}

STORES = "TensorBoard event files, csv/metrics.csv (logger=csv) or mlflow.db (logger=mlflow)"


class NoRunLogs(FileNotFoundError):
    """A directory with none of the stores a training run's loggers write."""


def read_scalars(run_dir: str | Path) -> Series:
    """Every scalar the run under `run_dir` logged, from each store found below it: {tag: {step: value}}."""
    run_dir = Path(run_dir)
    if not (_event_files(run_dir) or _csv_files(run_dir) or _mlflow_stores(run_dir)):
        raise NoRunLogs(f"{run_dir}: no logged scalars below it ({STORES}); a run directory of audio-thinker train?")
    series: Series = {}
    for reader in READERS:
        for tag, points in reader(run_dir).items():
            series.setdefault(tag, {}).update(points)
    return series


def _event_files(run_dir: Path) -> list[Path]:
    """TensorBoard event files, oldest first (by the creation time in their names: `...tfevents.<time>.<host>...`)."""

    def created(path: Path) -> tuple[int, str]:
        stamp = path.name.split(".")[3] if path.name.count(".") >= 3 else ""
        return (int(stamp) if stamp.isdigit() else 0, path.name)

    return sorted(run_dir.rglob("events.out.tfevents.*"), key=created)


def _csv_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.rglob("metrics.csv"), key=lambda p: p.stat().st_mtime)


def _mlflow_stores(run_dir: Path) -> list[Path]:
    return sorted(run_dir.rglob("mlflow.db"))


def tensorboard_scalars(run_dir: Path) -> Series:
    """The scalars of every TensorBoard event file below `run_dir`."""
    files = _event_files(run_dir)
    if not files:
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: Series = {}
    for path in files:
        accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            series.setdefault(tag, {}).update({event.step: event.value for event in accumulator.Scalars(tag)})
    return series


def csv_scalars(run_dir: Path) -> Series:
    """The scalars of every `metrics.csv` below `run_dir` (Lightning's CSVLogger: a `step` column, a column per tag)."""
    series: Series = {}
    for path in _csv_files(run_dir):
        with path.open(newline="") as file:
            for row in csv.DictReader(file):
                if not (row.get("step") or "").strip():
                    continue
                step = int(float(row.pop("step")))
                for tag, value in row.items():
                    if tag and value not in ("", None):
                        series.setdefault(tag, {})[step] = float(value)
    return series


def mlflow_scalars(run_dir: Path) -> Series:
    """The metric histories of every run in each `mlflow.db` below `run_dir`, older runs first."""
    stores = _mlflow_stores(run_dir)
    if not stores:
        return {}
    try:
        from mlflow import MlflowClient
    except ImportError as error:
        raise ModuleNotFoundError(
            f"{stores[0]} is an MLflow store; reading it needs MLflow: pip install 'audio-thinker[loggers]'"
        ) from error
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its schema check logs every migration step at INFO
    series: Series = {}
    for store in stores:
        client = MlflowClient(tracking_uri=f"sqlite:///{store}")
        experiments = [experiment.experiment_id for experiment in client.search_experiments()]
        runs = client.search_runs(experiments, order_by=["attributes.start_time ASC"]) if experiments else []
        for run in runs:
            for tag in run.data.metrics:
                history = client.get_metric_history(run.info.run_id, tag)
                series.setdefault(tag, {}).update({m.step: m.value for m in sorted(history, key=lambda m: m.timestamp)})
    return series


READERS: tuple[Callable[[Path], Series], ...] = (tensorboard_scalars, csv_scalars, mlflow_scalars)
