"""Put the test-time scaling curves of several evaluations on one plot, with their slopes and sweet spots.

    audio-thinker eval hydra.run.dir=evals/untrained
    audio-thinker eval eval.ckpt_path=outputs/train/runs/<date>/checkpoints/last.ckpt hydra.run.dir=evals/trained
    python tools/compare_scaling.py untrained=evals/untrained trained=evals/trained --out scaling.png

Each argument is LABEL=PATH, PATH an evaluation directory (its `scaling.json`) or the file itself. Prints one
Markdown row per curve (slope per token, fitted P(0), sweet spot and its accuracy) and writes the figure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from audio_thinker.eval.scaling_curve import ScalingCurve
from audio_thinker.eval.scaling_plot import plot_curves


def read_curve(path: str | Path) -> ScalingCurve:
    """The curve in a `scaling.json` (or in the one inside the directory `path`)."""
    path = Path(path)
    path = path / "scaling.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no scaling.json (run `audio-thinker eval` with eval.budgets)")
    data = json.loads(path.read_text())
    return ScalingCurve.from_dict(data)


def parse_pair(text: str) -> tuple[str, str]:
    """'label=path' -> (label, path)."""
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label, path


def markdown(curves: dict[str, ScalingCurve]) -> str:
    """One row per curve: slope, fitted P(0), sweet spot, accuracy there."""
    lines = [
        "| curve | slope β (per token) | fitted P(0) | sweet spot L | P(sweet spot) | slope s.e. | trend |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, c in curves.items():
        slope = "" if c.slope is None else f"{c.slope:+.5f}"
        intercept = "" if c.intercept is None else f"{c.intercept:.3f}"
        stderr = "" if c.slope_stderr is None else f"{c.slope_stderr:.5f}"
        row = f"| {label} | {slope} | {intercept} | {c.sweet_spot} | {c.sweet_spot_accuracy:.3f} | {stderr} |"
        lines.append(f"{row} {c.trend or ''} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, write the plot, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("curves", nargs="+", type=parse_pair, help="LABEL=PATH (an eval directory or scaling.json)")
    parser.add_argument("--out", default="scaling.png", help="the figure to write (default: scaling.png)")
    parser.add_argument("--title", default="Test-time scaling")
    args = parser.parse_args(argv)
    curves = {label: read_curve(path) for label, path in args.curves}
    plot_curves(curves, args.out, args.title)
    print(markdown(curves))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
