"""Read audio files into mono float32 at the model's rate, with errors that say what is wrong and what to do.

Decoding uses soundfile (libsndfile: WAV, FLAC, OGG, MP3 and more), because torchaudio's own `load` needs
FFmpeg; resampling uses `torchaudio.functional.resample` (windowed sinc, band-limited, so no aliasing).

Truncation policy: clips longer than `max_seconds` are cut to exactly `max_seconds`. The default, "head",
keeps the first `max_seconds` (what Whisper-style feature extractors do with their 30 s window, so the model
sees the same part it would have seen uncut); "center" keeps the middle, "tail" the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from audio_thinker.data.errors import AudioLoadError

Truncation = Literal["head", "center", "tail"]
TRUNCATIONS: tuple[str, ...] = ("head", "center", "tail")
_FIX = "fix or re-export the file (e.g. `ffmpeg -i in.xxx -ac 1 -ar 16000 out.wav`) or remove its row"


@dataclass(frozen=True)
class RawAudio:
    """Decoded samples as stored, before any conversion."""

    samples: np.ndarray  # [frames, channels] float32
    sampling_rate: int
    declared_bytes: int | None = None  # RIFF header's total size, when it exceeds the file (truncated WAV)

    @property
    def channels(self) -> int:
        """Number of channels in the file."""
        return int(self.samples.shape[1])

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.samples.shape[0] / self.sampling_rate


def read_audio(path: str | Path) -> RawAudio:
    """Decode `path` as-is, raising `AudioLoadError` (with `kind`) when it cannot be used."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not an audio file" if path.is_dir() else "not found"
        raise AudioLoadError(
            f"audio file {what}: {path}. Check the path in the manifest (relative paths resolve against the "
            "manifest's folder, or --audio-root / audio_root when given).",
            kind="missing_file", path=path,
        )  # fmt: skip
    size = path.stat().st_size
    if size == 0:
        raise AudioLoadError(f"audio file is empty (0 bytes): {path}; {_FIX}.", kind="empty_audio", path=path)
    try:
        info = sf.info(str(path))
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, EOFError) as err:
        raise AudioLoadError(
            f"cannot decode audio file {path}: its header is corrupt or truncated, or the format is not one "
            f"libsndfile reads ({err}); {_FIX}.",
            kind="corrupt_audio", path=path,
        ) from err  # fmt: skip
    if samples.shape[0] == 0:
        raise AudioLoadError(
            f"audio file has zero samples (zero-length audio, {info.format} header only): {path}; {_FIX}.",
            kind="empty_audio", path=path,
        )  # fmt: skip
    bad = ~np.isfinite(samples)
    if bad.any():
        first = int(np.argwhere(bad)[0, 0])
        raise AudioLoadError(
            f"audio file has {int(bad.sum())} NaN/inf samples (first at {first / rate:.3f} s): {path}; "
            f"{_FIX}.",
            kind="nonfinite_samples", path=path,
        )  # fmt: skip
    return RawAudio(samples, int(rate), _truncated_riff_size(path, size))


def _truncated_riff_size(path: Path, size: int) -> int | None:
    """The size a WAV's RIFF header declares when the file is shorter (libsndfile silently reads what is there)."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if len(head) < 8 or head[:4] not in (b"RIFF", b"RIFX"):
        return None
    declared = int.from_bytes(head[4:8], "little" if head[:4] == b"RIFF" else "big") + 8
    # Streaming writers leave 0 or 0xFFFFFFFF ("unknown length"); those are not truncation.
    if declared in (8, 0xFFFFFFFF + 8) or declared <= size:
        return None
    return declared


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels: [frames, channels] -> [frames] (equal weights, so no channel is favoured)."""
    return samples.mean(axis=1, dtype=np.float32) if samples.ndim == 2 else samples.astype(np.float32)


def resample(wave: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling of a mono waveform with `torchaudio.functional.resample`."""
    if orig_rate == target_rate:
        return wave
    return AF.resample(torch.from_numpy(np.ascontiguousarray(wave)), orig_rate, target_rate).numpy()


def truncate(wave: np.ndarray, max_samples: int, policy: Truncation = "head") -> np.ndarray:
    """Cut `wave` to at most `max_samples` following `policy` (see the module docstring)."""
    if policy not in TRUNCATIONS:
        raise ValueError(f"unknown truncation policy {policy!r}; use one of {list(TRUNCATIONS)}")
    excess = wave.shape[0] - max_samples
    if excess <= 0:
        return wave
    start = {"head": 0, "center": excess // 2, "tail": excess}[policy]
    return wave[start : start + max_samples]


def load_audio(
    path: str | Path,
    target_rate: int = 16_000,
    max_seconds: float | None = None,
    truncation: Truncation = "head",
) -> np.ndarray:
    """Mono float32 waveform of `path` at `target_rate`, at most `max_seconds` long."""
    raw = read_audio(path)
    wave = to_mono(raw.samples)
    if max_seconds is not None:
        # Cut before resampling (cheaper on long files), then again to the exact sample count.
        wave = truncate(wave, int(np.ceil(max_seconds * raw.sampling_rate)), truncation)
    wave = resample(wave, raw.sampling_rate, target_rate)
    if max_seconds is not None:
        wave = truncate(wave, int(round(max_seconds * target_rate)), truncation)
    return np.ascontiguousarray(wave, dtype=np.float32)


def peak_dbfs(wave: np.ndarray) -> float:
    """Peak level in dB relative to full scale (-inf for digital silence)."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def is_silent(wave: np.ndarray, threshold_db: float = -60.0) -> bool:
    """True when no sample rises above `threshold_db` dBFS: nothing to listen to."""
    return peak_dbfs(wave) < threshold_db
