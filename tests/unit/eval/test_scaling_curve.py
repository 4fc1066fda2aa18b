"""The scaling curve's numbers (fit, its error and verdict, intervals, chance, warnings) computed by hand."""

from __future__ import annotations

import json
import math

import pytest

from audio_thinker.eval.scaling_curve import NO_TREND, curve_from_predictions, fit_line, scaling_curve, sweet_spot
from audio_thinker.eval.scaling_plot import plot_curve

PAPER_GRID = list(range(0, 251, 25))


def test_a_straight_line_is_recovered_exactly():
    curve = scaling_curve([0, 50, 100], [0.5, 0.6, 0.7])  # +0.1 per 50 tokens
    assert curve.slope == pytest.approx(0.002) and curve.intercept == pytest.approx(0.5)
    assert (curve.sweet_spot, curve.sweet_spot_accuracy) == (100, 0.7)


def test_inverse_scaling_slope_by_hand():
    # x = 0, 50, 100 (mean 50); y = .6, .7, .5 (mean .6); Sxx = 2500 + 0 + 2500 = 5000;
    # Sxy = (-50)(0) + 0(.1) + 50(-.1) = -5  ->  beta = -5 / 5000 = -0.001, P(0) = .6 - (-0.001)(50) = 0.65.
    slope, intercept = fit_line([0, 50, 100], [0.6, 0.7, 0.5])
    assert slope == pytest.approx(-0.001) and intercept == pytest.approx(0.65)


def test_cesar_like_positive_slope_on_the_paper_grid():
    accuracy = [0.70 + 0.00038 * b for b in PAPER_GRID]
    curve = scaling_curve(PAPER_GRID, accuracy)
    assert curve.slope == pytest.approx(0.00038) and curve.intercept == pytest.approx(0.70)
    assert curve.sweet_spot == 250


def test_sweet_spot_ties_go_to_the_smallest_budget_and_input_order_does_not_matter():
    assert sweet_spot([0, 25, 50], [0.4, 0.6, 0.6]) == (25, 0.6)
    curve = scaling_curve([50, 0, 25], [0.6, 0.4, 0.6])
    assert curve.budgets == [0, 25, 50] and curve.accuracy == [0.4, 0.6, 0.6] and curve.sweet_spot == 25


def test_one_budget_has_no_slope_and_fit_line_refuses_it():
    curve = scaling_curve([32], [0.5])
    assert curve.slope is None and curve.intercept is None and curve.sweet_spot == 32
    with pytest.raises(ValueError, match="two distinct budgets"):
        fit_line([32, 32], [0.5, 0.6])


def test_plot_is_written_as_png(tmp_path):
    plot_curve(scaling_curve([0, 50, 100], [0.6, 0.7, 0.5]), tmp_path / "scaling.png")
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def graded(budget, correct, think=None, options=4, prefix="q"):
    """Prediction records at one budget: one per entry of `correct` (ids q0, q1, ...)."""
    think = think or [0] * len(correct)
    return [
        {"id": f"{prefix}{i}", "budget": budget, "correct": bool(c), "think_tokens": t, "options": options}
        for i, (c, t) in enumerate(zip(correct, think, strict=True))
    ]


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval, written out (independent of scipy)."""
    p = k / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return center - half, center + half


def test_four_examples_per_budget_give_a_slope_whose_interval_includes_zero():
    records = graded(0, [1, 0, 0, 0]) + graded(50, [1, 1, 1, 0], think=[10, 20, 0, 30])
    curve = curve_from_predictions(records, [0, 50])
    assert curve.accuracy == [0.25, 0.75] and curve.n == [4, 4] and curve.chance == 0.25
    assert curve.slope == pytest.approx(0.01) and curve.intercept == pytest.approx(0.25)
    # Residuals .75,-.25,-.25,-.25 | .25,.25,.25,-.75: SSE 1.5, s^2 = 1.5 / 6; Sxx = 8 * 25^2 = 5000.
    stderr = math.sqrt(0.25 / 5000)
    assert curve.slope_stderr == pytest.approx(stderr)
    half = 2.446911851144969 * stderr  # t(0.975, 6 degrees of freedom)
    assert curve.slope_interval == pytest.approx((0.01 - half, 0.01 + half))
    assert curve.trend == NO_TREND  # [-0.0073, 0.0273]: not "positive scaling"
    assert (curve.interval_low[0], curve.interval_high[0]) == pytest.approx(wilson(1, 4))
    assert (curve.interval_low[1], curve.interval_high[1]) == pytest.approx(wilson(3, 4))
    assert curve.mean_think_tokens == [0, 15] and curve.reasoning_rate == [0, 0.75]
    assert curve.warnings == ["slope +0.01 per token is not distinguishable from 0 at this sample size"]


def test_the_same_accuracies_on_a_hundred_examples_are_positive_scaling():
    records = graded(0, [1] * 30 + [0] * 70) + graded(50, [1] * 70 + [0] * 30, think=[12] * 100)
    curve = curve_from_predictions(records, [0, 50])
    assert curve.slope == pytest.approx(0.008) and curve.slope_interval[0] > 0
    assert curve.trend == "positive scaling" and curve.warnings == []
    inverse = curve_from_predictions(
        graded(0, [1] * 70 + [0] * 30) + graded(50, [1] * 30 + [0] * 70, [9] * 100), [0, 50]
    )
    assert inverse.trend == "inverse scaling" and inverse.slope_interval[1] < 0


def test_budgets_nobody_reasons_at_or_nobody_uses_are_warned_about():
    # The model stops after at most 20 tokens: budget 50 repeats budget 25; at budget 75 nothing reasons at all.
    records = (
        graded(0, [1, 0]) + graded(25, [1, 1], think=[10, 20]) + graded(50, [1, 0], think=[10, 20]) + graded(75, [0, 1])
    )
    curve = curve_from_predictions(records, [0, 25, 50, 75])
    assert curve.warnings[:2] == [
        "no example reasoned at budget(s) [75]: the curve there measures direct answers",
        "budget(s) [50] went unused: no example reasoned past the budget below, so they repeat it",
    ]


def test_chance_is_the_mean_guessing_accuracy_over_examples_with_options():
    records = graded(0, [1], options=2, prefix="two") + graded(0, [0], options=4, prefix="four")
    records += graded(0, [1], options=0, prefix="open") + graded(8, [1, 0, 1], options=0, prefix="x")
    records = [r for r in records if not r["id"].startswith("x")] + graded(8, [1], options=2, prefix="two")
    assert curve_from_predictions(records, [0, 8]).chance == pytest.approx((1 / 2 + 1 / 4) / 2)


def test_the_json_and_the_plot_carry_the_uncertainty(tmp_path):
    curve = curve_from_predictions(graded(0, [1, 0, 0, 0]) + graded(50, [1, 1, 1, 0], [10, 20, 0, 30]), [0, 50])
    saved = json.loads(json.dumps(curve.to_dict()))
    assert saved["n"] == [4, 4] and saved["chance"] == 0.25 and saved["trend"] == NO_TREND
    assert saved["slope_stderr"] == pytest.approx(curve.slope_stderr) and saved["warnings"]
    figure = plot_curve(curve, tmp_path / "scaling.png", title="tiny @ run/last.ckpt, step 40")
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    legend = " ".join(text.get_text() for text in figure.axes[0].get_legend().get_texts())
    for expected in ("95% interval", "n=4 per budget", "chance 0.25", "β = +0.01 ± 0.007 /token", NO_TREND):
        assert expected in legend, expected
    assert figure.axes[1].get_ylabel() == "mean reasoning tokens used (bars)"
    assert figure.axes[0].get_title() == "tiny @ run/last.ckpt, step 40"
    assert any("warning: slope" in text.get_text() for text in figure.texts)


def test_all_wrong_at_every_budget_is_a_flat_line_not_a_trend():
    curve = curve_from_predictions(graded(0, [0, 0]) + graded(25, [0, 0], think=[5, 9]), [0, 25])
    assert (curve.slope, curve.slope_stderr, curve.slope_interval) == (0.0, 0.0, (0.0, 0.0))
    assert curve.trend == NO_TREND
