"""Tables, images and text to whichever Lightning loggers are active, each in its own native form.

Scalars computed inside a step go through `self.log` as usual; a generation's scalars, known before its steps run,
go through `log_step_scalars` (why: its docstring). Richer records (the completions table, the scaling plot, a
judge prompt) have no common Lightning API, so `log_table` / `log_figure` / `log_text` write them per logger:

| logger        | table                          | figure                         | text                      |
|---------------|--------------------------------|--------------------------------|---------------------------|
| TensorBoard   | markdown text                  | `add_figure`                   | `add_text`                |
| Weights&Biases| `wandb.Table`                  | `wandb.Image`                  | a one-column table        |
| MLflow        | `log_table` (JSON artifact)    | `log_figure` (PNG artifact)    | `log_text` artifact       |
| CSV           | `<log_dir>/<key>/step_<n>.csv` | `<log_dir>/<key>/step_<n>.png` | `.../step_<n>.txt`        |

A logger of another kind gets a one-time warning naming it, never an exception: logging must not stop training.
`finish_runs` ends the W&B run that Lightning leaves open when training ends.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger

log = logging.getLogger(__name__)
_warned: set[tuple[str, str]] = set()


def log_table(loggers: Sequence[Logger], key: str, columns: list[str], rows: list[list[Any]], step: int) -> None:
    """A table (one list per row, aligned with `columns`) under `key` at `step`."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_text(key, markdown_table(columns, rows), global_step=step)
        elif isinstance(logger, WandbLogger):
            logger.log_table(key=key, columns=columns, data=rows, step=step)
        elif isinstance(logger, MLFlowLogger):
            data = {name: [row[i] for row in rows] for i, name in enumerate(columns)}
            logger.experiment.log_table(logger.run_id, data, artifact_file=f"{_slug(key)}/step_{step:06d}.json")
        elif isinstance(logger, CSVLogger):
            with _side_file(logger, key, step, "csv").open("w", newline="") as file:
                writer = csv.writer(file)
                writer.writerow(columns)
                writer.writerows(rows)
        else:
            _unsupported(logger, "tables")


def log_figure(loggers: Sequence[Logger], key: str, figure, step: int) -> None:
    """A matplotlib figure under `key` at `step`."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(key, figure, global_step=step, close=False)
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[figure], step=step)
        elif isinstance(logger, MLFlowLogger):
            logger.experiment.log_figure(logger.run_id, figure, f"{_slug(key)}/step_{step:06d}.png")
        elif isinstance(logger, CSVLogger):
            figure.savefig(_side_file(logger, key, step, "png"))
        else:
            _unsupported(logger, "figures")


def log_text(loggers: Sequence[Logger], key: str, text: str, step: int) -> None:
    """Free text (markdown welcome) under `key` at `step`."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_text(key, text, global_step=step)
        elif isinstance(logger, WandbLogger):
            logger.log_text(key=key, columns=["text"], data=[[text]], step=step)
        elif isinstance(logger, MLFlowLogger):
            logger.experiment.log_text(logger.run_id, text, f"{_slug(key)}/step_{step:06d}.txt")
        elif isinstance(logger, CSVLogger):
            _side_file(logger, key, step, "txt").write_text(text)
        else:
            _unsupported(logger, "text")


def log_step_scalars(trainer: L.Trainer, batch_idx: int, metrics: dict[str, float]) -> None:
    """Scalars that hold for a whole optimizer step (a generation's reward statistics, skip counts, sync time), called
    at each batch start: at the step's first micro-batch they go into `trainer.callback_metrics` (progress bar,
    checkpoint monitors, the value `train` returns) and into every logger at the x Lightning logs that step's
    `self.log` scalars at.

    Lightning's LearningRateMonitor writes the learning rate to the loggers this way. `self.log` would cost ~0.5 ms
    per scalar (it re-checks and moves its result object on every call: ~15 of these are ~5% of a small model's
    step) for a reduction these values do not need. They are written at every step: `trainer.log_every_n_steps`
    thins Lightning's own scalars only (0 turns these off too), so a step a callback stops at (a preemption, a last
    validation) never lacks them.
    """
    if not metrics or batch_idx % trainer.accumulate_grad_batches:  # Lightning's rule: a step starts at 0 mod A
        return
    trainer.callback_metrics.update({name: torch.tensor(float(value)) for name, value in metrics.items()})
    if trainer.log_every_n_steps:
        step = trainer.fit_loop.epoch_loop._batches_that_stepped  # no public accessor: LearningRateMonitor's x
        for logger in trainer.loggers:
            logger.log_metrics(dict(metrics), step=step)


def finish_runs(loggers: Sequence[Logger]) -> None:
    """End the W&B run of every `WandbLogger` once training has finished (the other loggers close in `finalize`).

    Lightning leaves it open: at interpreter exit wandb's service can stop before the run's last records are
    written, and a Hydra multirun trains its jobs one after another in one process, where every later
    `WandbLogger` would reuse the first job's run.
    """
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()


def markdown_table(columns: list[str], rows: list[list[Any]]) -> str:
    """`rows` as a markdown table; cells have newlines and pipes escaped so each row stays one line."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            value = f"{value:.4g}"
        return str(value).replace("|", "\\|").replace("\n", "<br>")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _side_file(logger: CSVLogger, key: str, step: int, suffix: str) -> Path:
    """`<log_dir>/<key>/step_<step>.<suffix>`, folders created."""
    path = Path(logger.log_dir) / _slug(key) / f"step_{step:06d}.{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _slug(key: str) -> str:
    """A tag as a relative path: `samples/completions` stays, anything odd becomes `_`."""
    return re.sub(r"[^A-Za-z0-9_./-]", "_", key).strip("/.") or "media"


def _unsupported(logger: Logger, what: str) -> None:
    name = type(logger).__name__
    if (name, what) not in _warned:
        _warned.add((name, what))
        log.warning("%s does not receive %s from audio-thinker (supported: TensorBoard, W&B, MLflow, CSV)", name, what)
