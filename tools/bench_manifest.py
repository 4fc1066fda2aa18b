"""Start-up benchmark for large manifests: how long a 40k-row manifest (AVQA's size) takes to open.

Writes a manifest of `--rows` records pointing at a few real audio files (MMAU's clip from ../shared/benchmarks when
present, else generated tones), in our JSONL and in AVQA's indented JSON list, then times, `--repeats` times each:
opening it (`ManifestDataset`: records parsed and checked, no audio read) and the first training batch (the data
module's loader; only that batch's clips are read). Medians are printed with the number of clips read.

    python tools/bench_manifest.py              # ~1 minute on a 2-core CPU
    python tools/bench_manifest.py --rows 4000

The last line is machine readable: `rows=<n> jsonl_open_s=<t> avqa_open_s=<t> first_batch_s=<t>`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

import audio_thinker.data.datasets as datasets
from audio_thinker.data.datamodule import AudioQADataModule
from audio_thinker.data.datasets import ManifestDataset

REAL_CLIP = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "mmau"


def write_clips(folder: Path, count: int = 4) -> list[str]:
    """`count` audio files in `folder`: copies of MMAU's real clip when available, else 10 s tones."""
    real = sorted(REAL_CLIP.glob("*.wav")) if REAL_CLIP.is_dir() else []
    names = []
    for i in range(count):
        name = f"clip{i}.wav"
        if real:
            shutil.copy(real[0], folder / name)
        else:
            t = np.arange(160_000) / 16_000
            sf.write(folder / name, (0.3 * np.sin(2 * np.pi * 220 * (i + 1) * t)).astype(np.float32), 16_000)
        names.append(name)
    return names


def write_manifests(folder: Path, rows: int, clips: list[str]) -> tuple[Path, Path]:
    """The same `rows` questions as our JSONL and as an AVQA JSON list."""
    choices = ["a dog barking", "a car engine", "a piano", "rain"]
    jsonl = folder / "train.jsonl"
    with jsonl.open("w") as out:
        for i in range(rows):
            out.write(json.dumps({"id": f"ex{i}", "audio": clips[i % len(clips)], "question": "What is sounding?",
                                  "choices": choices, "answer": choices[i % 4], "task": "source"}) + "\n")  # fmt: skip
    avqa = folder / "avqa_train.json"
    items = [{"id": i, "video_name": clips[i % len(clips)].removesuffix(".wav"), "multi_choice": choices,
              "question_text": "What is sounding in the video?", "answer": i % 4, "question_type": "Which"}
             for i in range(rows)]  # fmt: skip
    avqa.write_text(json.dumps(items, indent=2))
    return jsonl, avqa


def time_open(path: Path, repeats: int) -> float:
    """Median seconds to construct a `ManifestDataset` over `path`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        ManifestDataset(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_first_batch(path: Path, repeats: int, batch_size: int) -> tuple[float, int]:
    """Median seconds from nothing to the first training batch, and the clips read for it."""
    reads, load = [], datasets.load_audio
    datasets.load_audio = lambda *args, **kwargs: reads.append(args[0]) or load(*args, **kwargs)
    times = []
    try:
        for _ in range(repeats):
            reads.clear()
            start = time.perf_counter()
            next(iter(AudioQADataModule(ManifestDataset(path), batch_size=batch_size).train_dataloader()))
            times.append(time.perf_counter() - start)
    finally:
        datasets.load_audio = load
    return statistics.median(times), len(reads)


def main(argv: list[str] | None = None) -> int:
    """Write the manifests, time them, print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        jsonl, avqa = write_manifests(folder, args.rows, write_clips(folder))
        jsonl_s, avqa_s = time_open(jsonl, args.repeats), time_open(avqa, args.repeats)
        batch_s, clips_read = time_first_batch(jsonl, args.repeats, args.batch_size)
    print(f"{args.rows} rows, medians of {args.repeats}:")
    print(f"  open our JSONL          {jsonl_s:6.2f} s  ({1e6 * jsonl_s / args.rows:.0f} us per row, no audio read)")
    print(f"  open AVQA JSON list     {avqa_s:6.2f} s  ({1e6 * avqa_s / args.rows:.0f} us per row, no audio read)")
    print(f"  to the first batch      {batch_s:6.2f} s  ({clips_read} clips read for a batch of {args.batch_size})")
    print(f"rows={args.rows} jsonl_open_s={jsonl_s:.3f} avqa_open_s={avqa_s:.3f} first_batch_s={batch_s:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
