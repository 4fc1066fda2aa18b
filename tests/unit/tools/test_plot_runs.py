"""tools/plot_runs.py: several runs' scalars, one panel per tag, first and last values printed (TensorBoard runs
here; CSV and MLflow runs in tests/unit/test_run_logs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch.utils.tensorboard import SummaryWriter

from tools import plot_runs as tool


def write_run(directory: Path, scalars: dict[str, list[float]]) -> None:
    writer = SummaryWriter(str(directory / "tensorboard"))
    for tag, values in scalars.items():
        for step, value in enumerate(values):
            writer.add_scalar(tag, value, step * 10)
    writer.close()


def test_two_runs_and_a_wildcard_tag(tmp_path, capsys):
    write_run(tmp_path / "a", {"val/accuracy": [0.5, 0.7, 0.9], "think/rate_by_difficulty/easy": [1.0, 0.2]})
    write_run(tmp_path / "b", {"val/accuracy": [0.5, 0.5, 0.4], "think/rate_by_difficulty/easy": [1.0, 0.9]})
    out = tmp_path / "runs.png"
    argv = [
        f"listening={tmp_path / 'a'}",
        f"silence={tmp_path / 'b'}",
        "--tags",
        "val/accuracy",
        "think/rate_by_difficulty/*",
        "--out",
        str(out),
    ]
    assert tool.main(argv) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "val/accuracy | listening: 0.500 (step 0) -> 0.900 (step 20)" in printed
    assert "think/rate_by_difficulty/* | silence: easy: 1.000 (step 0) -> 0.900 (step 10)" in printed


def test_smoothing_is_a_trailing_mean():
    assert tool.smooth([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]


def test_validation_lines_are_never_smoothed():
    assert tool.smoothing_window("val/accuracy", 5) == 1
    assert tool.smoothing_window("think/length", 5) == 5


def test_a_directory_without_events_and_an_unknown_tag_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no logged scalars below it \(TensorBoard event files, csv/"):
        tool.main([f"x={tmp_path}"])
    write_run(tmp_path / "a", {"val/accuracy": [0.5]})
    with pytest.raises(ValueError, match="no run logged a tag matching 'loss'"):
        tool.main([f"x={tmp_path / 'a'}", "--tags", "loss", "--out", str(tmp_path / "p.png")])
