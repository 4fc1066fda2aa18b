"""Summarise a Hydra multirun: one table (Markdown + CSV) and one plot comparing the runs.

    audio-thinker train -m reward.terms.format.weight=0,0.5,1 callbacks=with_scaling
    python tools/summarize_sweep.py outputs/train/multiruns/<date>      # writes summary.{md,csv,png} there

See `audio_thinker/eval/sweep.py` for what is read from each run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from audio_thinker.eval.sweep import summarize_sweep


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, write the summary, print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a Hydra multirun directory (with 0/, 1/, ... run subdirectories)")
    parser.add_argument("--out", default=None, help="where to write summary.* (default: the sweep directory)")
    args = parser.parse_args(argv)
    out = Path(args.out or args.sweep_dir)
    runs = summarize_sweep(args.sweep_dir, out)
    print((out / "summary.md").read_text())
    print(f"{len(runs)} runs -> {out / 'summary.md'}, summary.csv, summary.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
