"""The test-time scaling curve P(L): accuracy against the reasoning budget L, its linear fit and sweet spot.

CESAR's measurement: P(L) is the accuracy when reasoning is limited to L tokens (budget forcing). A least-squares
line P(L) = P(0) + βL summarises the trend: β < 0 is test-time inverse scaling (thinking longer hurts), β > 0
positive scaling. Here β is in accuracy (a fraction) per reasoning token, so +0.001 is +10 points per 100 tokens.
The sweet spot is the budget of highest accuracy; ties go to the smallest budget (the cheapest one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ScalingCurve:
    """Accuracy per budget, its least-squares line and its sweet spot."""

    budgets: list[int]
    accuracy: list[float]
    slope: float | None  # β, accuracy per token (None with fewer than two distinct budgets)
    intercept: float | None  # the fitted P(0)
    sweet_spot: int
    sweet_spot_accuracy: float

    def to_dict(self) -> dict:
        """A JSON-ready dict (the content of `scaling.json`)."""
        return asdict(self)


def fit_line(budgets: Sequence[float], accuracy: Sequence[float]) -> tuple[float, float]:
    """Least-squares (slope, intercept) of accuracy = intercept + slope * budget."""
    if len(budgets) != len(accuracy):
        raise ValueError(f"{len(budgets)} budgets but {len(accuracy)} accuracies")
    if len(set(budgets)) < 2:
        raise ValueError("a line needs at least two distinct budgets")
    n = len(budgets)
    mean_x, mean_y = sum(budgets) / n, sum(accuracy) / n
    sxx = sum((x - mean_x) ** 2 for x in budgets)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(budgets, accuracy, strict=True))
    slope = sxy / sxx
    return slope, mean_y - slope * mean_x


def sweet_spot(budgets: Sequence[int], accuracy: Sequence[float]) -> tuple[int, float]:
    """(budget, accuracy) of the highest accuracy; among ties the smallest budget."""
    if not budgets:
        raise ValueError("no budgets")
    best = max(accuracy)
    return min(b for b, a in zip(budgets, accuracy, strict=True) if a == best), best


def scaling_curve(budgets: Sequence[int], accuracy: Sequence[float]) -> ScalingCurve:
    """The curve sorted by budget, with its fit (when two or more budgets) and sweet spot."""
    points = sorted(zip((int(b) for b in budgets), (float(a) for a in accuracy), strict=True))
    xs, ys = [b for b, _ in points], [a for _, a in points]
    slope, intercept = fit_line(xs, ys) if len(set(xs)) >= 2 else (None, None)
    spot, spot_accuracy = sweet_spot(xs, ys)
    return ScalingCurve(xs, ys, slope, intercept, spot, spot_accuracy)


def plot_curve(curve: ScalingCurve, path: str | Path | None = None, title: str = "Test-time scaling"):
    """A matplotlib figure of the curve, its fit and sweet spot; saved to `path` when given (Agg backend)."""
    return plot_curves({"accuracy P(L)": curve}, path, title)


def plot_curves(curves: dict[str, ScalingCurve], path: str | Path | None = None, title: str = "Test-time scaling"):
    """Several labelled curves on one figure, each with its fit (slope in the legend) and sweet spot (a star)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in tests
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5, 3.8), dpi=100)
    axes = figure.subplots()
    for label, curve in curves.items():
        (line,) = axes.plot(curve.budgets, curve.accuracy, "o-", label=label)
        if curve.slope is not None:
            ends = [min(curve.budgets), max(curve.budgets)]
            fit = [curve.intercept + curve.slope * b for b in ends]
            axes.plot(ends, fit, "--", color=line.get_color(), label=f"fit: {curve.intercept:.3f} {curve.slope:+.5f}·L")
        axes.plot([curve.sweet_spot], [curve.sweet_spot_accuracy], "*", markersize=14, color=line.get_color(),
                  label=f"sweet spot L={curve.sweet_spot}")  # fmt: skip
    axes.set_xlabel("reasoning budget L (tokens)")
    axes.set_ylabel("accuracy")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path)
    return figure
