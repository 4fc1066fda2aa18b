"""The scaling curve as a figure that shows its own uncertainty (see `eval.scaling_curve` for the numbers)."""

from __future__ import annotations

from pathlib import Path

from audio_thinker.eval.scaling_curve import ScalingCurve


def fit_label(curve: ScalingCurve) -> str:
    """`β = +1.2e-03 ± 8e-04 /token: no clear trend ...` (or the bare fit when no error is known)."""
    text = f"fit: β = {curve.slope:+.2g}"
    if curve.slope_stderr is not None:
        text += f" ± {curve.slope_stderr:.1g}"
    text += " /token"
    return text + (f"\n{curve.trend}" if curve.trend else "")


def interval_errors(curve: ScalingCurve) -> list[list[float]]:
    """The 95% intervals as matplotlib's asymmetric error bars: [below, above] each point."""
    below = [a - low for a, low in zip(curve.accuracy, curve.interval_low, strict=True)]
    above = [high - a for a, high in zip(curve.accuracy, curve.interval_high, strict=True)]
    return [below, above]


def label_budget_axes(axes) -> None:
    """Budget on x, accuracy on y (0 to 1), a light grid: the frame every scaling figure shares."""
    axes.set_xlabel("reasoning budget L (tokens)")
    axes.set_ylabel("accuracy")
    axes.set_ylim(-0.02, 1.02)
    axes.grid(alpha=0.3)


def plot_curve(curve: ScalingCurve, path: str | Path | None = None, title: str = "Test-time scaling"):
    """A matplotlib figure of P(L) with 95% intervals and n, chance, the fit and its verdict, the sweet spot, the
    reasoning tokens actually used (right axis) and the curve's warnings; saved to `path` when given (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in tests
    from matplotlib.figure import Figure

    warnings = curve.warnings
    figure = Figure(figsize=(6.4, 4.4 + 0.22 * len(warnings)), dpi=100)
    axes = figure.subplots()
    if curve.interval_low is not None:
        axes.errorbar(
            curve.budgets,
            curve.accuracy,
            yerr=interval_errors(curve),
            fmt="o-",
            capsize=3,
            zorder=3,
            label="accuracy P(L), 95% interval",
        )
    else:
        axes.plot(curve.budgets, curve.accuracy, "o-", zorder=3, label="accuracy P(L)")
    if curve.n is not None:
        label = f"n={curve.n[0]} per budget" if len(set(curve.n)) == 1 else None
        for budget, accuracy, n in zip(curve.budgets, curve.accuracy, curve.n, strict=True):
            if label is None:
                axes.annotate(
                    f"n={n}", (budget, accuracy), textcoords="offset points", xytext=(0, 8), fontsize=7, ha="center"
                )
        if label:
            axes.plot([], [], " ", label=label)
    if curve.reasoning_rate is not None:
        silent = [
            (b, a)
            for b, a, r in zip(curve.budgets, curve.accuracy, curve.reasoning_rate, strict=True)
            if b > 0 and r == 0
        ]
        if silent:
            axes.plot(
                *zip(*silent, strict=True), "x", color="tab:red", markersize=10, zorder=4, label="no example reasoned"
            )
    if curve.chance is not None:
        axes.axhline(curve.chance, color="gray", linestyle=":", label=f"chance {curve.chance:.2f}")
    if curve.slope is not None:
        ends = [min(curve.budgets), max(curve.budgets)]
        axes.plot(ends, [curve.intercept + curve.slope * b for b in ends], "--", label=fit_label(curve))
    axes.plot(
        [curve.sweet_spot],
        [curve.sweet_spot_accuracy],
        "*",
        markersize=14,
        zorder=5,
        label=f"sweet spot L={curve.sweet_spot}",
    )
    label_budget_axes(axes)
    if curve.mean_think_tokens is not None:
        used = axes.twinx()
        used.bar(
            curve.budgets,
            curve.mean_think_tokens,
            width=_bar_width(curve.budgets),
            color="tab:purple",
            alpha=0.2,
            zorder=1,
        )
        used.set_ylabel("mean reasoning tokens used (bars)", color="tab:purple")
        used.set_ylim(0, max(max(curve.budgets), 1) * 1.05)
        axes.set_zorder(used.get_zorder() + 1)  # the curve above the bars
        axes.patch.set_visible(False)
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=7, loc="best")
    if warnings:
        figure.text(0.01, 0.01, "\n".join(f"warning: {w}" for w in warnings), fontsize=7, color="tab:red", va="bottom")
    figure.tight_layout(rect=(0, 0.05 * len(warnings) if warnings else 0, 1, 1))
    if path is not None:
        figure.savefig(path)
    return figure


def _bar_width(budgets: list[int]) -> float:
    gaps = [b - a for a, b in zip(budgets, budgets[1:], strict=False) if b > a]
    return 0.6 * min(gaps) if gaps else 1.0


def plot_curves(curves: dict[str, ScalingCurve], path: str | Path | None = None, title: str = "Test-time scaling"):
    """Several labelled curves on one figure (e.g. untrained vs trained): each with its 95% intervals, its fit (slope
    in the legend) and its sweet spot (a star), and the chance level; saved to `path` when given (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.4), dpi=100)
    axes = figure.subplots()
    for label, curve in curves.items():
        if curve.interval_low is not None:
            line = axes.errorbar(
                curve.budgets, curve.accuracy, yerr=interval_errors(curve), fmt="o-", capsize=3, label=label
            )
            color = line.lines[0].get_color()
        else:
            color = axes.plot(curve.budgets, curve.accuracy, "o-", label=label)[0].get_color()
        if curve.slope is not None:
            ends = [min(curve.budgets), max(curve.budgets)]
            fit = [curve.intercept + curve.slope * b for b in ends]
            axes.plot(ends, fit, "--", color=color, label=f"{label} {fit_label(curve).splitlines()[0]}")
        axes.plot(
            [curve.sweet_spot],
            [curve.sweet_spot_accuracy],
            "*",
            markersize=14,
            color=color,
            label=f"{label} sweet spot L={curve.sweet_spot}",
        )
    chance = next((c.chance for c in curves.values() if c.chance is not None), None)
    if chance is not None:
        axes.axhline(chance, color="gray", linestyle=":", label=f"chance {chance:.2f}")
    label_budget_axes(axes)
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path)
    return figure
