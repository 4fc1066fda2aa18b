"""A Lightning logger that keeps every `log_metrics` call, for tests of what reaches the loggers and at which x."""

from __future__ import annotations

from lightning.pytorch.loggers import Logger


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
