"""`audio-thinker train logger=<name>`, run as a user runs it, leaves its scalars, completions table and scaling plot
in that logger's own store (TensorBoard event files, the CSV folder, the W&B offline run, the MLflow SQLite store).

`tests/unit/test_loggers.py` writes to each logger directly; these go through `train`, where a run hands its records
to loggers wrapped by its callbacks (a W&B table once crashed there, in step 1, while the unit tests passed).
"""

from __future__ import annotations

import importlib.util

import pytest

from audio_thinker.train import train
from tests.helpers.logger_stores import read_store

# Two steps, the completions table at step 0 (log_samples_every_n_steps divides 0), and the scaling plot at step 0
# (the with_scaling callbacks measure the untrained model at start), on two examples and two budgets.
TWO_STEPS = [
    "trainer.max_steps=2",
    "callbacks=with_scaling",
    "callbacks.scaling_curve.budgets=[0,4]",
    "callbacks.scaling_curve.max_examples=2",
    "callbacks.scaling_curve.answer_tokens=4",
    "callbacks.model_checkpoint=null",
    "callbacks.export=null",
    "data.val.size=2",
]
COLUMNS = ["id", "task", "question", "choices", "gold", "completion", "mode", "answer", "reward"]


def _installed(package: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        importlib.util.find_spec(package) is None, reason=f"{package} is not installed (pip install .[loggers])"
    )


@pytest.mark.parametrize(
    "logger",
    [
        "tensorboard",
        "csv",
        pytest.param("wandb", marks=_installed("wandb")),
        pytest.param("mlflow", marks=_installed("mlflow")),
    ],
)
def test_a_run_leaves_scalars_the_completions_table_and_a_figure_in_the_loggers_store(
    logger, train_cfg, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # nothing lands in the directory the tests started from (MLflow's ./mlruns)
    for name in ("CONFIG", "CACHE", "DATA"):  # W&B's settings and artifact staging stay in the test's folder
        monkeypatch.setenv(f"WANDB_{name}_DIR", str(tmp_path / f"wandb-{name.lower()}"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")  # and restored after: Lightning sets it for an offline logger

    metrics = train(train_cfg([f"logger={logger}", *TWO_STEPS]))  # the run's folder is tmp_path

    stored = read_store(logger, tmp_path)
    for tag in ("reward/total", "loss/total", "completion/length"):
        assert sorted(stored.scalars.get(tag, {})) == [0, 1], f"{tag} by step in {logger}: {stored.scalars.get(tag)}"
        assert stored.scalars[tag][1] == pytest.approx(metrics[tag], rel=1e-6)  # what the run computed
    table = stored.tables["samples/completions"]
    assert table.columns[: len(COLUMNS)] == COLUMNS and table.columns[-1] == "advantage"
    assert len(table.rows) == 4 and all(row[COLUMNS.index("completion")] for row in table.rows)
    assert stored.figures["scaling/curve"][:8] == b"\x89PNG\r\n\x1a\n"
    if logger == "wandb":
        import wandb

        assert wandb.run is None  # finished: the next job of a multirun starts a run of its own
