"""Plot the scalars of several training runs side by side: one panel per tag, one line per run.

    python tools/plot_runs.py listening=outputs/train/runs/A silence=outputs/train/runs/B \
        --tags val/accuracy reward/accuracy --out learning.png

Each run is LABEL=DIR (a run directory: what its loggers wrote below it is read, TensorBoard events, CSV's
metrics.csv or MLflow's mlflow.db; `audio_thinker.run_logs`). A tag may name several
tags with a `*` (`think/rate_by_difficulty/*`): each match is a line, labelled with the run and the tag's last
part. `--smooth N` averages every training line over a window of N logged points (training scalars are noisy);
`val/*` lines are never smoothed (a few exact points each). Prints the first and last value of every line.
"""

from __future__ import annotations

import argparse
import fnmatch
from pathlib import Path

from audio_thinker.run_logs import read_scalars


def read_run(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the run: [(step, value)] in step order (the last value logged at a step wins)."""
    return {tag: sorted(points.items()) for tag, points in read_scalars(run_dir).items()}


def smoothing_window(tag: str, window: int) -> int:
    """`window` for training scalars, 1 for validation ones (averaging 4 points over 5 would smear the curve)."""
    return 1 if tag.startswith("val/") else window


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing mean over `window` points (the first points average what there is)."""
    return [sum(values[max(0, i - window + 1) : i + 1]) / (i + 1 - max(0, i - window + 1)) for i in range(len(values))]


def lines(runs: dict[str, dict], pattern: str) -> dict[str, list[tuple[int, float]]]:
    """{label: points} of every run's tags matching `pattern`."""
    out = {}
    for label, series in runs.items():
        matches = sorted(tag for tag in series if fnmatch.fnmatchcase(tag, pattern))
        for tag in matches:
            out[label if len(matches) == 1 and tag == pattern else f"{label}: {tag.rsplit('/', 1)[-1]}"] = series[tag]
    return out


def parse_pair(text: str) -> tuple[str, str]:
    """'label=dir' -> (label, dir)."""
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=DIR, got {text!r}")
    return label, path


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, draw the panels, print first and last values."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=parse_pair, help="LABEL=DIR, a training run directory")
    parser.add_argument("--tags", nargs="+", default=["val/accuracy"], help="scalar tags (`*` matches several)")
    parser.add_argument("--smooth", type=int, default=1, help="trailing mean over N points (default 1: raw)")
    parser.add_argument("--out", default="runs.png")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    runs = {label: read_run(path) for label, path in args.runs}

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.6 * len(args.tags), 3.4), dpi=100)
    panels = figure.subplots(1, len(args.tags), squeeze=False)[0]
    for axes, pattern in zip(panels, args.tags, strict=True):
        found = lines(runs, pattern)
        if not found:
            raise ValueError(f"no run logged a tag matching {pattern!r}")
        for label, points in found.items():
            steps, values = [s for s, _ in points], [v for _, v in points]
            window = smoothing_window(pattern, args.smooth)
            axes.plot(steps, smooth(values, window), "o-" if len(points) < 30 else "-", label=label, markersize=3)
            print(f"{pattern} | {label}: {values[0]:.3f} (step {steps[0]}) -> {values[-1]:.3f} (step {steps[-1]})")
        window = smoothing_window(pattern, args.smooth)
        axes.set_title(pattern + (f" (mean of {window})" if window > 1 else ""), fontsize=9)
        axes.set_xlabel("optimizer step")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    if args.title:
        figure.suptitle(args.title, fontsize=10)
    figure.tight_layout()
    figure.savefig(args.out)
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
