"""tools/compare_scaling.py: two evaluations' curves on one figure and their slopes in one table."""

from __future__ import annotations

import json

import pytest

from tools import compare_scaling as tool


def test_two_curves_one_plot_and_their_numbers(tmp_path, capsys):
    for name, accuracy in (("untrained", [0.5, 0.45, 0.4]), ("trained", [0.8, 0.85, 0.85])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "scaling.json").write_text(json.dumps({"budgets": [0, 50, 100], "accuracy": accuracy}))
    out = tmp_path / "scaling.png"
    assert (
        tool.main(
            [
                f"untrained={tmp_path / 'untrained'}",
                f"trained={tmp_path / 'trained' / 'scaling.json'}",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert out.read_bytes()[:4] == b"\x89PNG"
    table = capsys.readouterr().out
    assert "| untrained | -0.00100 | 0.500 | 0 | 0.500 |" in table  # (0.4 - 0.5) / 100 per token
    assert "| trained | +0.00050 | 0.808 | 50 | 0.850 |" in table  # ties go to the smaller budget


def test_a_missing_curve_and_a_bad_argument_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="eval.budgets"):
        tool.main([f"x={tmp_path}"])
    with pytest.raises(SystemExit):
        tool.main(["no-label-here"])
