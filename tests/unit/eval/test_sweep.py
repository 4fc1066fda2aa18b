"""Sweep summaries from hand-written TensorBoard logs: means over the last N steps, accuracy beside reward, values
on the bars, and no empty panel."""

from __future__ import annotations

import csv

import pytest
from torch.utils.tensorboard import SummaryWriter

from audio_thinker.eval.sweep import collect_runs, summarize_sweep, tail_means, write_plot


def fake_run(sweep, name: str, overrides: list[str], scalars: dict[str, dict[int, float]]):
    """A multirun folder as Hydra and TensorBoard leave it."""
    run = sweep / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    writer = SummaryWriter(str(run / "tensorboard"))
    for tag, points in scalars.items():
        for step, value in points.items():
            writer.add_scalar(tag, value, step)
    writer.close()
    return run


@pytest.fixture
def sweep(tmp_path):
    fake_run(
        tmp_path,
        "0_reward=rlvr",
        ["reward=rlvr", "trainer.max_steps=20"],
        {
            "reward/total": {step: float(step) for step in range(20)},  # last 10 steps: 10..19, mean 14.5; last 19
            "reward/accuracy": {step: 0.5 for step in range(20)},
            "reward/total_std": {step: 9.0 for step in range(20)},
            "val/accuracy": {9: 0.25, 19: 0.75},  # every 10 steps: the window holds only step 19's
        },
    )
    fake_run(
        tmp_path,
        "1_reward=cesar",
        ["reward=cesar", "trainer.max_steps=20"],
        {
            "reward/total": {step: 2.0 * step for step in range(4)},  # a short run: all its steps, mean 3
            "reward/accuracy": {0: 0.0, 1: 0.0, 2: 1.0, 3: 1.0},
        },
    )
    return tmp_path


def test_training_scalars_are_means_over_the_last_n_steps(sweep):
    values = tail_means(sweep / "0_reward=rlvr", last_n=10)
    assert values["reward/total"] == pytest.approx(14.5)  # not 19, the last value
    assert values["val/accuracy"] == pytest.approx(0.75) and "reward/total_std" not in values
    assert tail_means(sweep / "0_reward=rlvr", last_n=1)["reward/total"] == pytest.approx(19)
    assert tail_means(sweep / "1_reward=cesar", last_n=10)["reward/accuracy"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="last_n"):
        tail_means(sweep / "0_reward=rlvr", last_n=0)


def test_the_table_puts_accuracy_next_to_reward(sweep, tmp_path):
    summarize_sweep(sweep, tmp_path / "out", last_n=10)
    with (tmp_path / "out" / "summary.csv").open() as file:
        header, *rows = list(csv.reader(file))
    assert header[:5] == ["run", "reward", "reward/total", "reward/accuracy", "val/accuracy"]
    assert rows[0][:5] == ["0", "rlvr", "14.5", "0.5", "0.75"] and rows[1][:5] == ["1", "cesar", "3", "0.5", ""]
    assert "means over each run's last 10 steps" in (tmp_path / "out" / "summary.md").read_text()


def test_the_plot_writes_values_on_the_bars_and_has_no_empty_panel(sweep, tmp_path):
    runs = collect_runs(sweep, last_n=10)
    figure = write_plot(runs, tmp_path / "summary.png", last_n=10)
    assert len(figure.axes) == 2  # reward and accuracy; no scaling panel without curves
    reward, accuracy = figure.axes
    assert [t.get_text() for t in reward.texts] == ["14.5", "3"]
    assert reward.get_title() == "reward/total (mean of the last 10 steps)"
    assert sorted(t.get_text().strip() for t in accuracy.texts if t.get_text()) == ["0.5", "0.5", "0.75", "n/a"]
    runs[1].curve = ([0, 25], [0.5, 0.75])
    assert len(write_plot(runs, tmp_path / "with_curves.png").axes) == 3
    assert (tmp_path / "summary.png").read_bytes()[:4] == b"\x89PNG"
