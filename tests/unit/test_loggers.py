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


class RecordingLogger(Logger):
    """Every `log_metrics` call, as (step, metrics)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, dict]] = []

    name, version = "recording", 0

    def log_metrics(self, metrics, step=None) -> None:
        self.calls.append((step, dict(metrics)))

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass


class GenerationScalars(L.Callback):
    """Logs `gen/value` = the step's index before each step, as the reward callback logs a generation's rewards."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx % trainer.accumulate_grad_batches == 0:  # once per optimizer step
            log_step_scalars(trainer, {"gen/value": float(trainer.global_step)})


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


@pytest.mark.parametrize(("every", "accumulate"), [(1, 1), (2, 1), (1, 2)])
def test_step_scalars_reach_loggers_at_the_x_of_the_steps_self_log_scalars(tmp_path, every, accumulate):
    logger = RecordingLogger()
    trainer = L.Trainer(
        max_steps=4,
        logger=logger,
        log_every_n_steps=every,
        accumulate_grad_batches=accumulate,
        callbacks=[GenerationScalars()],
        default_root_dir=tmp_path,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Linear())
    ours = [(step, m["gen/value"]) for step, m in logger.calls if "gen/value" in m]
    lightnings = [step for step, m in logger.calls if "loss" in m]
    assert lightnings == list(range(every - 1, 4, every))  # Lightning's own steps: the reference
    assert ours == [(step, float(step)) for step in lightnings]  # the same x, once each, the step's own value
    assert float(trainer.callback_metrics["gen/value"]) == 3.0  # the last step's, where train() reads it
