"""Small audio and manifest writers shared by the data tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_thinker.data.errors import DataError
from audio_thinker.data.synthetic import SyntheticAudioQA


def sine(freq_hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine tone."""
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def write_audio(path: Path, samples: np.ndarray, rate: int = 16_000, subtype: str | None = None) -> Path:
    """Write `samples` ([frames] or [frames, channels]) with soundfile; the extension picks the container."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, subtype=subtype)
    return path


def write_jsonl(path: Path, records: list[dict | str]) -> Path:
    """One record per line; a str is written verbatim (to plant malformed lines)."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def record(example_id: str, audio: str, **extra) -> dict:
    """A valid record of our JSONL format (two-option question, answer "high")."""
    return {
        "id": example_id,
        "audio": audio,
        "question": "Is the tone high or low?",
        "choices": ["high", "low"],
        "answer": "high",
        **extra,
    }


def peak_hz(wave: np.ndarray, rate: int) -> float:
    """Frequency of the FFT magnitude peak (Hann window, zero-padded for 0.1 Hz bins at 16 kHz)."""
    n = max(1 << 18, 1 << int(np.ceil(np.log2(len(wave)))))
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave)), n))
    return float(np.argmax(spectrum) * rate / n)


class PartlyBrokenSynthetic(SyntheticAudioQA):
    """Synthetic examples where the items at `bad` fail to load (as a corrupt audio file would)."""

    def __init__(self, bad: list[int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.bad = set(bad)

    def __getitem__(self, index: int):
        if index in self.bad:
            raise DataError(f"item {index} is broken on purpose", kind="test")
        return super().__getitem__(index)
