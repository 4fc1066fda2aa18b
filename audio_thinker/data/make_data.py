"""`audio-thinker make-data`: write the synthetic tasks as WAV files plus `train.jsonl` / `val.jsonl` manifests.

The output is a pure function of the arguments: the same seed writes byte-identical files. Each split draws
from its own seed (train: seed, val: seed + 100003, test: seed + 200003), so no example appears in two splits,
and at seed 0 the val split is the in-memory validation set of `configs/data/synthetic.yaml`.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from audio_thinker.data.synthetic import DIFFICULTIES, TASKS, SyntheticAudioQA

# Far apart so that no small training seed reuses another split's examples.
SPLIT_SEED_OFFSETS = {"train": 0, "val": 100_003, "test": 200_003}


def split_seed(seed: int, split: str) -> int:
    """The seed of `split`: fixed offsets for train/val/test, a stable hash of the name otherwise."""
    return seed + SPLIT_SEED_OFFSETS.get(split, 300_007 + zlib.crc32(split.encode()) % 100_003)


def _jsonable(value: object) -> object:
    """Generator metadata as plain JSON values (numpy scalars and arrays become floats and lists)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def write_synthetic_dataset(
    out_dir: str | Path,
    size_per_split: Mapping[str, int] | None = None,
    seed: int = 0,
    tasks: Sequence[str] = tuple(TASKS),
    difficulties: Sequence[str] = DIFFICULTIES,
    sampling_rate: int = 16_000,
    subtype: str = "PCM_16",
    progress: bool = False,
) -> dict[str, Path]:
    """Write `audio/<split>/<id>.wav` and `<split>.jsonl` for each split under `out_dir`; return the manifests.

    `progress`: a bar per split on standard error (when it is a terminal).
    """
    out_dir = Path(out_dir)
    sizes = dict(size_per_split or {"train": 256, "val": 64})
    manifests: dict[str, Path] = {}
    for split, size in sizes.items():
        dataset = SyntheticAudioQA(size, split_seed(seed, split), tasks, difficulties, sampling_rate)
        (out_dir / "audio" / split).mkdir(parents=True, exist_ok=True)
        manifest = out_dir / f"{split}.jsonl"
        with manifest.open("w", encoding="utf-8") as handle:
            bar = tqdm(
                dataset, desc=f"make-data {split}", unit="example", file=sys.stderr, disable=None if progress else True
            )
            for example in bar:
                relative = Path("audio") / split / f"{example.id}.wav"
                sf.write(out_dir / relative, example.audio, sampling_rate, subtype=subtype)
                record = {
                    "id": example.id,
                    "audio": relative.as_posix(),
                    "question": example.question,
                    "choices": example.choices,
                    "answer": example.answer,
                    "task": example.task,
                    "difficulty": example.difficulty,
                    "duration": round(example.audio.shape[0] / sampling_rate, 4),
                    "meta": _jsonable(example.meta),
                }
                handle.write(json.dumps(record) + "\n")
        manifests[split] = manifest
    info = {
        "seed": seed,
        "splits": sizes,
        "tasks": list(tasks),
        "difficulties": list(difficulties),
        "sampling_rate": sampling_rate,
        "subtype": subtype,
    }
    (out_dir / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return manifests


def make_data_main(argv: Sequence[str] | None = None) -> int:
    """`audio-thinker make-data OUT_DIR`: write the synthetic dataset and print where its manifests are."""
    parser = argparse.ArgumentParser(prog="audio-thinker make-data", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--val-size", type=int, default=64)
    parser.add_argument("--test-size", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--difficulties", nargs="+", default=list(DIFFICULTIES), choices=list(DIFFICULTIES))
    parser.add_argument("--sampling-rate", type=int, default=16_000)
    parser.add_argument("--subtype", default="PCM_16", help="soundfile subtype: PCM_16, PCM_24, FLOAT")
    args = parser.parse_args(argv)
    sizes = {"train": args.train_size, "val": args.val_size, "test": args.test_size}
    manifests = write_synthetic_dataset(
        args.out_dir,
        {k: v for k, v in sizes.items() if v > 0},
        args.seed,
        args.tasks,
        args.difficulties,
        args.sampling_rate,
        args.subtype,
        progress=True,
    )
    for split, path in manifests.items():
        print(f"{split}: {sizes[split]} examples -> {path}")
    return 0
