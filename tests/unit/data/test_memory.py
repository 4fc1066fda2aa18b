"""Bounded memory on long audio: peak RSS measured in a fresh interpreter (slow: they write GBs of WAV).

Each measurement runs the work in a subprocess, after imports and a warm-up on a short file, resets the kernel's
high-water mark and reports how far the peak resident memory rose above the resident memory before the work: the
work's own cost (`tests.helpers.memory`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.helpers.data import record, sine, write_audio, write_jsonl
from tests.helpers.memory import peak_rss_growth_mb

pytestmark = pytest.mark.slow
RATE = 16_000


def long_wav(path: Path, seconds: int) -> Path:
    """A 16-bit mono WAV of `seconds`, written a minute at a time (the test process never holds it)."""
    minute = (sine(440.0, 60.0, RATE, 0.3) * 32767).astype(np.int16)
    with sf.SoundFile(path, "w", RATE, 1, "PCM_16") as out:
        for _ in range(seconds // 60):
            out.write(minute)
    return path


def test_loading_a_2_hour_file_costs_only_its_30_s_window(tmp_path):
    path = long_wav(tmp_path / "two_hours.wav", 2 * 3600)  # 230 MB on disk, 460 MB as float32
    short = write_audio(tmp_path / "short.wav", sine(440.0, 1.0, 44_100), 44_100)
    growth, shape = peak_rss_growth_mb(
        "from audio_thinker.data.audio import load_audio\nresult = list(load_audio(names['path'], 16000, 30.0).shape)",
        "from audio_thinker.data.audio import load_audio\nload_audio(names['short'], 16000, 30.0)",
        path=path,
        short=short,
    )
    assert shape == [30 * RATE]
    print(f"load_audio(2 h WAV, max 30 s): peak RSS +{growth:.1f} MB")
    assert growth < 40  # the window is 1.9 MB as float32; the whole file decoded would be +460 MB


def test_data_check_runs_in_bounded_memory_on_a_100_hour_manifest(tmp_path):
    clip = long_wav(tmp_path / "clip.wav", 600)  # 10 minutes; 600 hard links to it make 100 hours
    (tmp_path / "audio").mkdir()
    rows = []
    for i in range(600):
        os.link(clip, tmp_path / "audio" / f"{i:03d}.wav")  # distinct paths: each is scanned as its own file
        rows.append(record(f"q{i}", f"audio/{i:03d}.wav"))
    manifest = write_jsonl(tmp_path / "long.jsonl", rows)
    small = write_jsonl(tmp_path / "small.jsonl", [record("w", "short.wav")])
    write_audio(tmp_path / "short.wav", sine(440.0, 1.0, RATE))
    growth, hours = peak_rss_growth_mb(
        "from audio_thinker.data.validate import check_dataset\n"
        "report = check_dataset(names['manifest'])\nresult = [report.unique_audio_seconds / 3600, report.usable]",
        "from audio_thinker.data.validate import check_dataset\ncheck_dataset(names['small'])",
        manifest=manifest,
        small=small,
    )
    assert hours == [pytest.approx(100.0), 600]
    print(f"data check, 100 h in 600 files of 10 min: peak RSS +{growth:.1f} MB")
    assert growth < 60  # one block at a time; keeping every decoded file (as before) would need ~23 GB
