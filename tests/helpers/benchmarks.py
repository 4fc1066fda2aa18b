"""Real benchmark files for tests: the MMAU test-mini excerpt in tests/assets, the full file when present.

The full `mmau-test-mini.json` lives outside the repository, in `<repo root>/../shared/benchmarks/mmau/`, or in
`$AUDIO_THINKER_BENCHMARKS/mmau/`; tests that need it skip, saying where they looked, when it is absent.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
EXCERPT = REPO / "tests" / "assets" / "mmau" / "mmau-test-mini-excerpt.json"


def benchmark_dirs() -> list[Path]:
    """Where the shared benchmark folder may be: beside the repository, then $AUDIO_THINKER_BENCHMARKS."""
    dirs = [REPO.parent / "shared" / "benchmarks"]
    if os.environ.get("AUDIO_THINKER_BENCHMARKS"):
        dirs.append(Path(os.environ["AUDIO_THINKER_BENCHMARKS"]))
    return dirs


def full_mmau_test_mini() -> Path:
    """The full MMAU test-mini file, or a pytest skip naming the places looked at."""
    candidates = [d / "mmau" / "mmau-test-mini.json" for d in benchmark_dirs()]
    for path in candidates:
        if path.is_file():
            return path
    pytest.skip(
        f"MMAU test-mini not found at {[str(p) for p in candidates]}: set AUDIO_THINKER_BENCHMARKS to the "
        "folder holding mmau/mmau-test-mini.json"
    )


def read_items(path: Path) -> list[dict]:
    """The items of an MMAU JSON file."""
    return json.loads(path.read_text(encoding="utf-8"))


def write_placeholder_audio(items: list[dict], root: Path, seconds: float = 0.2, rate: int = 16_000) -> Path:
    """A quiet tone (pitch from the item id) at `root/<audio_id>` for every item; returns `root`."""
    t = np.arange(int(seconds * rate)) / rate
    for item in items:
        path = root / item["audio_id"]
        path.parent.mkdir(parents=True, exist_ok=True)
        freq = 200 + zlib.crc32(item["id"].encode()) % 800
        sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)
    return root


def official_rule(entry: dict) -> bool:
    """MMAU's rule as its README describes it, written without looking at format/mmau.py: every word token of
    the answer appears in `model_output`, and no token belonging only to a wrong option does."""

    def tokens(text: str) -> set[str]:
        found, word = set(), ""
        for char in text.lower() + " ":
            if char.isalnum() or char == "_":
                word += char
            elif word:
                found.add(word)
                word = ""
        return found

    said, gold = tokens(entry["model_output"]), tokens(entry["answer"])
    if not said or not gold <= said:
        return False
    return all(not (said & (tokens(c) - gold)) for c in entry["choices"] if tokens(c) != gold)
