"""Tables, figures and text reach every kind of logger, each in its own form."""

from __future__ import annotations

import csv
import importlib.util

import lightning as L
import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from audio_thinker.loggers import log_figure, log_step_scalars, log_table, log_text, markdown_table  # noqa: E402
from tests.helpers.loggers import RecordingLogger  # noqa: E402

COLUMNS, ROWS = ["id", "completion", "reward"], [["e1", "<answer>A</answer>", 1.0], ["e2", "a | b\nc", 0.25]]


def _write_all(logger) -> None:
    figure = plt.figure()
    plt.plot([0, 1], [0.5, 0.75])
    log_table([logger], "samples/completions", COLUMNS, ROWS, step=3)
    log_figure([logger], "scaling/curve", figure, step=3)
    log_text([logger], "judge/prompt", "Does the reasoning agree?", step=3)
    plt.close(figure)


def test_markdown_table_keeps_one_line_per_row():
    text = markdown_table(COLUMNS, ROWS)
    assert text.splitlines() == [
        "| id | completion | reward |",
        "|---|---|---|",
        "| e1 | <answer>A</answer> | 1 |",
        "| e2 | a \\| b<br>c | 0.25 |",
    ]


def test_tensorboard_gets_text_and_images(tmp_path):
    logger = TensorBoardLogger(tmp_path, name="tb", version="")
    _write_all(logger)
    logger.experiment.flush()
    (events,) = (tmp_path / "tb").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    assert "scaling/curve" in accumulator.Tags()["images"]
    tensors = accumulator.Tags()["tensors"]  # text summaries are stored as tensors
    assert {"samples/completions/text_summary", "judge/prompt/text_summary"} <= set(tensors)


def test_csv_gets_side_files(tmp_path):
    logger = CSVLogger(tmp_path, name="csv", version="")
    _write_all(logger)
    root = tmp_path / "csv"
    with (root / "samples" / "completions" / "step_000003.csv").open() as file:
        assert list(csv.reader(file)) == [COLUMNS, ["e1", "<answer>A</answer>", "1.0"], ["e2", "a | b\nc", "0.25"]]
    assert (root / "scaling" / "curve" / "step_000003.png").read_bytes()[:4] == b"\x89PNG"
    assert (root / "judge" / "prompt" / "step_000003.txt").read_text() == "Does the reasoning agree?"


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed (pip install .[loggers])")
def test_wandb_offline_gets_tables_and_images(tmp_path, monkeypatch):
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandbLogger(save_dir=str(tmp_path), project="t", offline=True)
    _write_all(logger)
    logger.experiment.finish()
    media = {
        p.relative_to(next(tmp_path.glob("wandb/offline-run-*/files/media"))).parts[:2]
        for p in tmp_path.glob("wandb/offline-run-*/files/media/**/*.*")
    }
    assert {("table", "samples"), ("images", "scaling"), ("table", "judge")} <= media


@pytest.mark.skipif(
    importlib.util.find_spec("mlflow") is None, reason="mlflow is not installed (pip install mlflow-skinny)"
)
def test_mlflow_gets_artifacts_beside_its_store_in_the_run_directory(tmp_path, monkeypatch, train_cfg):
    from hydra.utils import instantiate
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)  # the MLflow default would write ./mlruns here
    cfg = train_cfg(["logger=mlflow"])
    logger = instantiate(cfg.logger.mlflow)
    _write_all(logger)
    client = MlflowClient(tracking_uri=cfg.logger.mlflow.tracking_uri)
    found = set()
    pending = [None]
    while pending:
        for item in client.list_artifacts(logger.run_id, pending.pop()):
            (pending.append(item.path) if item.is_dir else found.add(item.path))
    assert found == {
        "samples/completions/step_000003.json",
        "scaling/curve/step_000003.png",
        "judge/prompt/step_000003.txt",
    }
    assert not (tmp_path / "mlruns").exists()
    assert len(list((tmp_path / "mlflow-artifacts").rglob("step_000003.png"))) == 1


def test_another_logger_is_warned_about_once(caplog):
    class Other(Logger):
        name, version = "other", 0

        def log_metrics(self, metrics, step=None):
            pass

        def log_hyperparams(self, params, *args, **kwargs):
            pass

    for _ in range(2):
        log_text([Other()], "judge/prompt", "x", step=0)
    assert sum("Other does not receive text" in r.getMessage() for r in caplog.records) == 1


class GenerationScalars(L.Callback):
    """Writes `gen/value` = the step's index at each batch start, as the rollout and reward callbacks write a
    generation's scalars; stops the run after step `stop_after` when given, as a preemption would."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        log_step_scalars(trainer, batch_idx, {"gen/value": float(trainer.global_step)})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.stop_after is not None and trainer.global_step > self.stop_after:
            trainer.should_stop = True


class Linear(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch).pow(2).mean()
        self.log("loss", loss, on_step=True, batch_size=1)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.ones(16, 2), batch_size=1)


def fit_recorded(tmp_path, callback: GenerationScalars, every: int = 1, accumulate: int = 1, steps: int = 4):
    """A 4-step fit with `callback`; every (step, metrics) the logger received, and the trainer."""
    logger = RecordingLogger()
    trainer = L.Trainer(
        max_steps=steps,
        logger=logger,
        log_every_n_steps=every,
        accumulate_grad_batches=accumulate,
        callbacks=[callback],
        default_root_dir=tmp_path,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Linear())
    return logger.calls, trainer


def written(calls: list, tag: str) -> list[tuple[int, float]]:
    return [(step, m[tag]) for step, m in calls if tag in m]


@pytest.mark.parametrize("accumulate", [1, 2])
def test_step_scalars_are_written_once_per_step_at_the_x_lightning_logs_it_at(tmp_path, accumulate):
    calls, trainer = fit_recorded(tmp_path, GenerationScalars(), accumulate=accumulate)
    assert [step for step, _ in written(calls, "loss")] == [0, 1, 2, 3]  # Lightning's own x: the reference
    assert written(calls, "gen/value") == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]  # once each, the step's own
    assert float(trainer.callback_metrics["gen/value"]) == 3.0  # the last step's, where train() reads it


def test_step_scalars_are_written_at_every_step_when_lightning_thins_its_own(tmp_path):
    calls, _ = fit_recorded(tmp_path, GenerationScalars(), every=3)
    assert [step for step, _ in written(calls, "loss")] == [2]
    assert [step for step, _ in written(calls, "gen/value")] == [0, 1, 2, 3]


def test_a_step_a_callback_stops_at_has_its_step_scalars(tmp_path):
    calls, trainer = fit_recorded(tmp_path, GenerationScalars(stop_after=1), every=3, steps=8)
    assert trainer.global_step == 2  # stopped after its second step, which is not one of Lightning's every 3rd
    assert [step for step, _ in written(calls, "loss")] == [1]  # Lightning logs the step it stops at
    assert [step for step, _ in written(calls, "gen/value")] == [0, 1]


def test_no_step_scalars_reach_the_loggers_with_logging_off_but_callback_metrics_still_has_them(tmp_path):
    calls, trainer = fit_recorded(tmp_path, GenerationScalars(), every=0)
    assert written(calls, "gen/value") == [] and written(calls, "loss") == []
    assert float(trainer.callback_metrics["gen/value"]) == 3.0


def test_a_new_fit_writes_its_first_step_even_with_the_number_written_last(tmp_path):
    callback = GenerationScalars()
    first, _ = fit_recorded(tmp_path / "first", callback, accumulate=2)
    again, _ = fit_recorded(tmp_path / "again", callback, accumulate=2)  # the same callback, steps 0-3 again
    assert written(first, "gen/value") == written(again, "gen/value") == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]
