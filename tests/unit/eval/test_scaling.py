"""The scaling-curve fit and sweet spot on curves whose answers are computed by hand."""

from __future__ import annotations

import pytest

from audio_thinker.eval.scaling import fit_line, plot_curve, scaling_curve, sweet_spot

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
