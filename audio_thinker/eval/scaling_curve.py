"""The test-time scaling curve P(L): accuracy against the reasoning budget L, with the uncertainty that goes with it.

CESAR's measurement: P(L) is the accuracy when reasoning is limited to L tokens (budget forcing). A least-squares
line P(L) = P(0) + βL summarises the trend, β in accuracy (a fraction) per reasoning token (+0.001 is +10 points
per 100 tokens). Small evaluations make that line noisy, so the curve carries what is needed to read it honestly:

- per budget: the number of graded predictions n, the accuracy with its 95% Wilson interval
  (`scipy.stats.binomtest`), the mean reasoning tokens actually used, and the share of predictions that reasoned;
- the chance level, the mean of 1 / (number of options) over the examples;
- the slope fitted (`scipy.stats.linregress`) to every graded prediction (L, correct 0/1), so its standard error
  shrinks with n and grows with the scatter; with the same n at every budget the slope is the one through the
  per-budget accuracies. Its 95% interval is slope ± t(0.975, N - 2) x stderr, and the trend is called positive
  (or inverse) scaling only when that interval excludes 0;
- warnings: a budget > 0 at which no prediction reasoned (the curve then measures direct answers), and budgets
  no prediction used beyond the budget below (the model stops earlier, so they repeat it).

The sweet spot is the budget of highest accuracy; ties go to the smallest budget (the cheapest one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields

from scipy import stats

NO_TREND = "no clear trend (the slope's 95% interval includes 0)"


@dataclass(frozen=True)
class BudgetPoint:
    """The graded predictions at one budget: n, accuracy with a 95% interval, the reasoning actually done."""

    budget: int
    n: int
    correct: int
    mean_think_tokens: float
    max_think_tokens: int
    reasoning_rate: float  # share of predictions with any reasoning

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% Wilson score interval of the accuracy."""
        if not self.n:
            return float("nan"), float("nan")
        ci = stats.binomtest(self.correct, self.n).proportion_ci(confidence_level=0.95, method="wilson")
        return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class SlopeFit:
    """β, P(0), the standard error of β and its 95% interval (nan where two points leave no error estimate)."""

    slope: float
    intercept: float
    stderr: float
    low: float
    high: float

    @property
    def trend(self) -> str:
        """What the fit supports: positive or inverse scaling only when the interval excludes 0."""
        if math.isnan(self.low):
            return "undetermined (too few points for an interval)"
        if self.low > 0:
            return "positive scaling"
        if self.high < 0:
            return "inverse scaling"
        return NO_TREND


def fit_slope(budgets: Sequence[float], outcomes: Sequence[float]) -> SlopeFit:
    """Least squares of `outcomes` (accuracies, or 0/1 per prediction) on `budgets`, with its 95% interval."""
    if len(budgets) != len(outcomes):
        raise ValueError(f"{len(budgets)} budgets but {len(outcomes)} outcomes")
    if len(set(budgets)) < 2:
        raise ValueError("a line needs at least two distinct budgets")
    fit = stats.linregress(budgets, outcomes)
    df = len(budgets) - 2
    stderr = float(fit.stderr) if df > 0 else float("nan")
    if df > 0 and len(set(outcomes)) == 1:  # every outcome equal: a flat line with no residual (scipy gives nan)
        stderr = 0.0
    half = float(stats.t.ppf(0.975, df)) * stderr if df > 0 else float("nan")
    return SlopeFit(float(fit.slope), float(fit.intercept), stderr, fit.slope - half, fit.slope + half)


def fit_line(budgets: Sequence[float], accuracy: Sequence[float]) -> tuple[float, float]:
    """Least-squares (slope, intercept) of accuracy = intercept + slope * budget."""
    fit = fit_slope(budgets, accuracy)
    return fit.slope, fit.intercept


def sweet_spot(budgets: Sequence[int], accuracy: Sequence[float]) -> tuple[int, float]:
    """(budget, accuracy) of the highest accuracy; among ties the smallest budget."""
    if not budgets:
        raise ValueError("no budgets")
    best = max(accuracy)
    return min(b for b, a in zip(budgets, accuracy, strict=True) if a == best), best


@dataclass(frozen=True)
class ScalingCurve:
    """Accuracy per budget with its sample size and interval, the reasoning used, chance, the fit and sweet spot.

    The per-budget lists are aligned with `budgets`; they are None where only accuracies were given.
    """

    budgets: list[int]
    accuracy: list[float]
    slope: float | None  # β, accuracy per token (None with fewer than two distinct budgets)
    intercept: float | None  # the fitted P(0)
    sweet_spot: int
    sweet_spot_accuracy: float
    slope_stderr: float | None = None
    slope_interval: tuple[float, float] | None = None
    trend: str | None = None
    n: list[int] | None = None
    interval_low: list[float] | None = None
    interval_high: list[float] | None = None
    mean_think_tokens: list[float] | None = None
    reasoning_rate: list[float] | None = None
    chance: float | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict (the content of `scaling.json`); nan becomes None."""
        return {key: _json_safe(value) for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping) -> ScalingCurve:
        """The curve `to_dict` wrote; a bare {budgets, accuracy} gets its fit computed."""
        if "sweet_spot" not in data:
            return scaling_curve(data["budgets"], data["accuracy"])
        known = {f.name for f in fields(cls)} & set(data)
        values = {key: data[key] for key in known}
        if values.get("slope_interval") is not None:
            values["slope_interval"] = tuple(values["slope_interval"])
        return cls(**values)


def _json_safe(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _with_fit(xs: list[int], ys: list[float], fit: SlopeFit | None, **extra) -> ScalingCurve:
    spot, spot_accuracy = sweet_spot(xs, ys)
    if fit is None:
        return ScalingCurve(xs, ys, None, None, spot, spot_accuracy, **extra)
    return ScalingCurve(
        xs,
        ys,
        fit.slope,
        fit.intercept,
        spot,
        spot_accuracy,
        _nan_none(fit.stderr),
        None if math.isnan(fit.low) else (fit.low, fit.high),
        fit.trend,
        **extra,
    )


def _nan_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def scaling_curve(budgets: Sequence[int], accuracy: Sequence[float]) -> ScalingCurve:
    """The curve of bare accuracies, sorted by budget: the fit through the points (its error from their scatter)."""
    points = sorted(zip((int(b) for b in budgets), (float(a) for a in accuracy), strict=True))
    xs, ys = [b for b, _ in points], [a for _, a in points]
    return _with_fit(xs, ys, fit_slope(xs, ys) if len(set(xs)) >= 2 else None)


def budget_points(predictions: Sequence[Mapping], budgets: Sequence[int]) -> list[BudgetPoint]:
    """One `BudgetPoint` per budget from graded predictions (records with `budget`, `correct`, `think_tokens`)."""
    points = []
    for budget in sorted({int(b) for b in budgets}):
        group = [p for p in predictions if p["budget"] == budget]
        n = len(group)
        points.append(
            BudgetPoint(
                budget,
                n,
                sum(bool(p["correct"]) for p in group),
                sum(p["think_tokens"] for p in group) / n if n else float("nan"),
                max((p["think_tokens"] for p in group), default=0),
                sum(p["think_tokens"] > 0 for p in group) / n if n else float("nan"),
            )
        )
    return points


def chance_level(predictions: Sequence[Mapping]) -> float | None:
    """The accuracy of guessing: mean 1 / options over the examples with options (None when none has any)."""
    options = {p["id"]: p.get("options", 0) for p in predictions}
    guesses = [1 / k for k in options.values() if k]
    return sum(guesses) / len(guesses) if guesses else None


def curve_warnings(points: Sequence[BudgetPoint], fit: SlopeFit | None) -> list[str]:
    """What makes the curve misleading: budgets where nothing reasoned or that nothing used, a flat-within-noise fit."""
    warnings = []
    silent = [p.budget for p in points if p.budget > 0 and p.reasoning_rate == 0]
    if silent:
        warnings.append(f"no example reasoned at budget(s) {silent}: the curve there measures direct answers")
    unused = [
        b.budget
        for a, b in zip(points, points[1:], strict=False)
        if b.budget not in silent and b.max_think_tokens <= a.budget
    ]
    if unused:
        warnings.append(f"budget(s) {unused} went unused: no example reasoned past the budget below, so they repeat it")
    if fit is not None and fit.trend == NO_TREND:
        warnings.append(f"slope {fit.slope:+.2g} per token is not distinguishable from 0 at this sample size")
    return warnings


def curve_from_predictions(predictions: Sequence[Mapping], budgets: Sequence[int]) -> ScalingCurve:
    """The full curve (module docstring) from graded budget-forced predictions."""
    points = [point for point in budget_points(predictions, budgets) if point.n]  # a budget with no prediction: none
    if not points:
        raise ValueError(f"no graded prediction at any of the budgets {sorted(budgets)}")
    graded = [p for p in predictions if p["budget"] in {point.budget for point in points}]
    xs, ys = [p["budget"] for p in graded], [float(bool(p["correct"])) for p in graded]
    fit = fit_slope(xs, ys) if len(set(xs)) >= 2 else None
    intervals = [point.interval for point in points]
    return _with_fit(
        [p.budget for p in points],
        [p.accuracy for p in points],
        fit,
        n=[p.n for p in points],
        interval_low=[low for low, _ in intervals],
        interval_high=[high for _, high in intervals],
        mean_think_tokens=[p.mean_think_tokens for p in points],
        reasoning_rate=[p.reasoning_rate for p in points],
        chance=chance_level(graded),
        warnings=curve_warnings(points, fit),
    )
