"""Evaluation throughput: `audio-thinker eval` on every MMAU test-mini item with placeholder audio.

The real question file, a placeholder clip per item (a 10 s tone, as long as the first item's real clip; MMAU's
clips last 10-30 s, and Qwen2-Audio's encoder pads every clip to 30 s, so the length barely changes the cost),
the embedded tiny Qwen2-Audio, the free pass (`eval.max_new_tokens`, 256) and a reasoning-budget grid.

    python tools/bench_eval.py                                  # 1,000 items, budgets 0,50,100
    python tools/bench_eval.py --budgets 0,25,50 --batch-size 32 --max-examples 100
    python tools/bench_eval.py --mmau path/to/mmau-test-mini.json --audio-dir /tmp/mmau-audio

The MMAU file defaults to `<repo>/../shared/benchmarks/mmau/mmau-test-mini.json` (or `$AUDIO_THINKER_BENCHMARKS`).
Reports the wall time of the whole command (interpreter start and model load included) and of the grading loop
(first to last line of `eval.log`). The last line is machine readable:
`examples=<n> passes=<p> total_s=<t> grading_s=<g> examples_per_s=<r>`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import datetime
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]


def default_mmau() -> Path:
    """The shared MMAU test-mini file beside the repository, else under $AUDIO_THINKER_BENCHMARKS."""
    roots = [REPO.parent / "shared" / "benchmarks"]
    if os.environ.get("AUDIO_THINKER_BENCHMARKS"):
        roots.append(Path(os.environ["AUDIO_THINKER_BENCHMARKS"]))
    for root in roots:
        if (root / "mmau" / "mmau-test-mini.json").is_file():
            return root / "mmau" / "mmau-test-mini.json"
    raise SystemExit(f"mmau-test-mini.json not found under {[str(r) for r in roots]}: pass --mmau")


def write_placeholders(items: list[dict], root: Path, seconds: float, rate: int = 16_000) -> int:
    """A tone at `root/<audio_id>` for every item that has no file yet; returns how many were written."""
    t = np.arange(int(seconds * rate)) / rate
    written = 0
    for item in items:
        path = root / item["audio_id"]
        if path.is_file():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        freq = 200 + zlib.crc32(item["id"].encode()) % 800
        sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)
        written += 1
    return written


def grading_seconds(log: Path) -> float:
    """Seconds between the first and the last timestamped line of an `eval.log` (the grading loop)."""
    stamps = [
        datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")
        for line in log.read_text().splitlines()
        if line.startswith("[20")
    ]
    return (stamps[-1] - stamps[0]).total_seconds()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmau", type=Path, default=None, help="mmau-test-mini.json (default: the shared copy)")
    parser.add_argument("--audio-dir", type=Path, default=None, help="where placeholder clips go (default: temp)")
    parser.add_argument("--budgets", default="0,50,100", help="reasoning budgets, comma separated")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-examples", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=10.0, help="placeholder clip length")
    parser.add_argument("--out", type=Path, default=None, help="the eval's output directory (default: temp)")
    args = parser.parse_args(argv)
    mmau = args.mmau or default_mmau()
    items = json.loads(mmau.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        audio_dir = args.audio_dir or Path(tmp) / "audio"
        out = args.out or Path(tmp) / "eval"
        print(f"placeholder clips written: {write_placeholders(items, audio_dir, args.seconds)} (in {audio_dir})")
        cmd = [
            sys.executable,
            "-m",
            "audio_thinker.cli",
            "eval",
            "data=manifest",
            f"data.val.path={mmau}",
            f"data.val.audio_root={audio_dir}",
            f"eval.budgets=[{args.budgets}]",
            f"eval.batch_size={args.batch_size}",
            f"hydra.run.dir={out}",
        ]
        if args.max_examples:
            cmd.append(f"eval.max_examples={args.max_examples}")
        start = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        total = time.perf_counter() - start
        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
            return result.returncode
        metrics = json.loads((out / "metrics.json").read_text())
        grading = grading_seconds(out / "eval.log")
    n, passes = metrics["n_examples"], 1 + len(args.budgets.split(","))
    print(
        f"{n} examples x {passes} passes (free + budgets {args.budgets}), batch {args.batch_size}, "
        f"{os.cpu_count()} CPUs, torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}"
    )
    print(f"accuracy ({metrics['scorer']}) {metrics['accuracy']:.3f}; left out {len(metrics['skipped'])}")
    print(f"examples={n} passes={passes} total_s={total:.1f} grading_s={grading:.1f} examples_per_s={n / grading:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
