"""FlushLogsCallback's recording wrapper: every record reaches the logger, only numbers are kept for a resume."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from lightning.pytorch.loggers import Logger

from audio_thinker.callbacks.step_logs import FlushLogsCallback, numeric_scalars


class Media:
    """Stands for a `wandb.Table` or `wandb.Image`: what W&B's `log_table` / `log_image` pass to `log_metrics`."""


def test_numeric_scalars_keeps_one_number_per_key_and_drops_media():
    metrics = {
        "loss/total": torch.tensor(0.25),
        "reward/total": np.float32(0.5),
        "val/examples": np.int64(2),
        "lr": 1e-3,
        "epoch": 1,
        "batch": torch.tensor([0.1, 0.2]),  # not one number
        "samples/completions": Media(),
        "scaling/curve": [Media()],
        "note": "text",
    }
    assert numeric_scalars(metrics) == {
        "loss/total": 0.25,
        "reward/total": 0.5,
        "val/examples": 2.0,
        "lr": 1e-3,
        "epoch": 1.0,
    }


def test_the_wrapped_logger_still_receives_tables_and_images():
    class Recording(Logger):
        name, version = "recording", 0

        def __init__(self) -> None:
            super().__init__()
            self.calls = []

        def log_metrics(self, metrics, step=None):
            self.calls.append((metrics, step))

        def log_hyperparams(self, params, *args, **kwargs):
            pass

    logger = Recording()
    FlushLogsCallback().setup(SimpleNamespace(loggers=[logger]), None, "fit")
    table, images = {"samples/completions": Media()}, {"scaling/curve": [Media()]}
    logger.log_metrics(table, step=0)  # as WandbLogger.log_table does; a float() of it raised a TypeError
    logger.log_metrics(images, step=0)
    assert logger.calls == [(table, 0), (images, 0)]
