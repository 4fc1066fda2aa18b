"""Summarise a Hydra multirun: one table (Markdown + CSV) and one plot comparing the runs.

    audio-thinker train -m reward.terms.format.weight=0,0.5,1 callbacks=with_scaling
    python tools/summarize_sweep.py outputs/train/multiruns/<date>      # writes summary.{md,csv,png} there

See `audio_thinker/eval/sweep.py` for what is read from each run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from audio_thinker.eval.sweep import LAST_N, summarize_sweep


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, write the summary, print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a Hydra multirun directory (run folders 0_<overrides>, 1_<overrides>, ...)")
    parser.add_argument("--out", default=None, help="where to write summary.* (default: the sweep directory)")
    parser.add_argument(
        "--last-n",
        type=int,
        default=LAST_N,
        help=f"average training scalars over each run's last N steps (default {LAST_N})",
    )
    args = parser.parse_args(argv)
    out = Path(args.out or args.sweep_dir)
    runs = summarize_sweep(args.sweep_dir, out, args.last_n)
    print((out / "summary.md").read_text())
    print(f"{len(runs)} runs -> {out / 'summary.md'}, summary.csv, summary.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
