"""Read audio files into mono float32 at the model's rate, with errors that say what is wrong and what to do.

Decoding uses soundfile (libsndfile: WAV, FLAC, OGG, MP3 and more), because torchaudio's own `load` needs
FFmpeg; resampling uses `torchaudio.functional.resample` (windowed sinc, band-limited, so no aliasing).

Truncation policy: clips longer than `max_seconds` are cut to exactly `max_seconds`. The default, "head",
keeps the first `max_seconds` (what Whisper-style feature extractors do with their 30 s window, so the model
sees the same part it would have seen uncut); "center" keeps the middle, "tail" the end. Only the kept window
is decoded (soundfile seeks to it), so a 2-hour file costs what 30 s cost.

Memory: `load_audio` holds one window; `inspect_audio` (used by `data check`) scans a whole file block by block.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from audio_thinker.data.errors import AudioLoadError
from audio_thinker.example import AudioQAExample

Truncation = Literal["head", "center", "tail"]
TRUNCATIONS: tuple[str, ...] = ("head", "center", "tail")
_FIX = "fix or re-export the file (e.g. `ffmpeg -i in.xxx -ac 1 -ar 16000 out.wav`) or remove its row"
# Shorter clips give Qwen2-Audio's encoder at most 2 audio tokens (25 per second): next to nothing to hear. They
# still train (they are valid audio), with a warning at load and in `data check`.
MIN_AUDIO_SECONDS = 0.1
# Frames decoded at a time when a whole file is scanned: about 1 MB per channel.
BLOCK_FRAMES = 1 << 18
_DECODE_ERRORS = (sf.LibsndfileError, RuntimeError, EOFError)


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


@dataclass(frozen=True)
class AudioInfo:
    """What a whole file holds, measured block by block (no decoded copy is kept)."""

    frames: int
    sampling_rate: int
    channels: int
    format: str
    peak: float  # largest |sample| of the mono mix-down
    declared_bytes: int | None = None  # as in `RawAudio`

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.frames / self.sampling_rate

    @property
    def peak_db(self) -> float:
        """Peak level of the mono mix-down in dB relative to full scale (-inf for digital silence)."""
        return 20 * float(np.log10(self.peak)) if self.peak > 0 else float("-inf")


def check_file(path: Path) -> int:
    """The size of `path` in bytes, or an `AudioLoadError` saying what it is instead of a readable audio file."""
    try:
        info = path.stat()  # follows links
    except FileNotFoundError:
        if path.is_symlink():
            raise AudioLoadError(
                f"audio file is a broken symbolic link: {path} -> {os.readlink(path)} (the target does not exist). "
                "Check the path in the manifest or fix the link.",
                kind="missing_file",
                path=path,
            ) from None
        raise AudioLoadError(
            f"audio file not found: {path}. Check the path in the manifest (relative paths resolve against the "
            "manifest's folder, or --audio-root / audio_root when given).",
            kind="missing_file",
            path=path,
        ) from None
    except OSError as err:
        what = "is a symbolic link loop" if err.errno == errno.ELOOP else f"cannot be read ({err.strerror})"
        raise AudioLoadError(
            f"audio path {what}: {path}. Check the path in the manifest or fix the link.", kind="bad_path", path=path
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise AudioLoadError(
            f"audio path is {_file_type(info.st_mode)}, not an audio file: {path}. Check the path in the manifest.",
            kind="bad_path",
            path=path,
        )
    if info.st_size == 0:
        raise AudioLoadError(f"audio file is empty (0 bytes): {path}; {_FIX}.", kind="empty_audio", path=path)
    return info.st_size


def _file_type(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _undecodable(path: Path, err: Exception) -> AudioLoadError:
    return AudioLoadError(
        f"cannot decode audio file {path}: its header is corrupt or truncated, or the format is not one "
        f"libsndfile reads ({err}); {_FIX}.",
        kind="corrupt_audio",
        path=path,
    )


def _no_samples(path: Path, fmt: str) -> AudioLoadError:
    return AudioLoadError(
        f"audio file has zero samples (zero-length audio, {fmt} header only): {path}; {_FIX}.",
        kind="empty_audio",
        path=path,
    )


def _nonfinite(path: Path, count: int, first_frame: int, rate: int) -> AudioLoadError:
    return AudioLoadError(
        f"audio file has {count} NaN/inf samples (first at {first_frame / rate:.3f} s): {path}; {_FIX}.",
        kind="nonfinite_samples",
        path=path,
    )


def read_audio(path: str | Path, start: int = 0, frames: int = -1) -> RawAudio:
    """Decode `frames` frames of `path` from frame `start` (default: the whole file), or raise `AudioLoadError`
    (with `kind`) when the file cannot be used. Only that window is decoded."""
    path = Path(path)
    size = check_file(path)
    try:
        with sf.SoundFile(str(path)) as handle:
            if handle.frames == 0:
                raise _no_samples(path, handle.format)
            if start:
                handle.seek(start)
            samples, rate = handle.read(frames, dtype="float32", always_2d=True), handle.samplerate
    except _DECODE_ERRORS as err:
        raise _undecodable(path, err) from err
    bad = ~np.isfinite(samples)
    if bad.any():
        raise _nonfinite(path, int(bad.sum()), start + int(np.argwhere(bad)[0, 0]), rate)
    return RawAudio(samples, int(rate), _truncated_riff_size(path, size))


def inspect_audio(path: str | Path, block_frames: int = BLOCK_FRAMES) -> AudioInfo:
    """Scan the whole of `path` block by block: the checks of `read_audio`, in memory bounded by one block."""
    path = Path(path)
    size = check_file(path)
    frames, peak, bad, first_bad = 0, 0.0, 0, -1
    try:
        with sf.SoundFile(str(path)) as handle:
            rate, channels, fmt = handle.samplerate, handle.channels, handle.format
            for block in handle.blocks(block_frames, dtype="float32", always_2d=True):
                nonfinite = ~np.isfinite(block)
                if nonfinite.any():
                    first_bad = first_bad if bad else frames + int(np.argwhere(nonfinite)[0, 0])
                    bad += int(nonfinite.sum())
                elif block.size:
                    peak = max(peak, float(np.max(np.abs(to_mono(block)))))
                frames += block.shape[0]
    except _DECODE_ERRORS as err:
        raise _undecodable(path, err) from err
    if frames == 0:
        raise _no_samples(path, fmt)
    if bad:
        raise _nonfinite(path, bad, first_bad, rate)
    return AudioInfo(frames, int(rate), channels, fmt, peak, _truncated_riff_size(path, size))


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
    start, count = window(wave.shape[0], max_samples, policy)
    return wave if count < 0 else wave[start : start + count]


def check_truncation(policy: str) -> Truncation:
    """`policy` if it names a truncation policy; else a ValueError listing them."""
    if policy not in TRUNCATIONS:
        raise ValueError(f"unknown truncation policy {policy!r}; use one of {list(TRUNCATIONS)}")
    return policy


def window(frames: int, max_frames: int, policy: Truncation = "head") -> tuple[int, int]:
    """(first frame, frame count) that `policy` keeps of `frames`; count -1 when all of it fits."""
    check_truncation(policy)
    excess = frames - max_frames
    if excess <= 0:
        return 0, -1
    return {"head": 0, "center": excess // 2, "tail": excess}[policy], max_frames


def load_audio(
    path: str | Path,
    target_rate: int = 16_000,
    max_seconds: float | None = None,
    truncation: Truncation = "head",
) -> np.ndarray:
    """Mono float32 waveform of `path` at `target_rate`, at most `max_seconds` long (only that part is decoded)."""
    start, frames = 0, -1
    if max_seconds is not None:
        path = Path(path)
        check_file(path)  # a clear error before libsndfile's own
        try:
            info = sf.info(str(path))
        except _DECODE_ERRORS as err:
            raise _undecodable(path, err) from err
        # Cut before resampling (cheaper on long files), then again to the exact sample count.
        start, frames = window(info.frames, int(np.ceil(max_seconds * info.samplerate)), truncation)
    raw = read_audio(path, start, frames)
    return _to_model_rate(raw.samples, raw.sampling_rate, target_rate, max_seconds, truncation)


def _to_model_rate(
    samples: np.ndarray, rate: int, target_rate: int, max_seconds: float | None, truncation: Truncation
) -> np.ndarray:
    """Decoded [frames, channels] samples as the mono float32 wave the model hears (resampled, cut exactly)."""
    wave = resample(to_mono(samples), rate, target_rate)
    if max_seconds is not None:
        wave = truncate(wave, int(round(max_seconds * target_rate)), truncation)
    return np.ascontiguousarray(wave, dtype=np.float32)


def load_audio_bytes(
    data: bytes,
    name: str,
    target_rate: int = 16_000,
    max_seconds: float | None = None,
    truncation: Truncation = "head",
) -> np.ndarray:
    """`load_audio` for an encoded file held in memory (a `datasets` Audio column's bytes); `name` names it in
    errors. Only the kept window is decoded."""
    if not data:
        raise AudioLoadError(f"audio of {name} is empty (0 bytes); {_FIX}.", kind="empty_audio", path=name)
    try:
        with sf.SoundFile(io.BytesIO(data)) as handle:
            if handle.frames == 0:
                raise _no_samples(name, handle.format)
            rate, start, frames = handle.samplerate, 0, -1
            if max_seconds is not None:
                start, frames = window(handle.frames, int(np.ceil(max_seconds * rate)), truncation)
            if start:
                handle.seek(start)
            samples = handle.read(frames, dtype="float32", always_2d=True)
    except _DECODE_ERRORS as err:
        raise _undecodable(name, err) from err
    bad = ~np.isfinite(samples)
    if bad.any():
        raise _nonfinite(name, int(bad.sum()), start + int(np.argwhere(bad)[0, 0]), rate)
    return _to_model_rate(samples, int(rate), target_rate, max_seconds, truncation)


def peak_dbfs(wave: np.ndarray) -> float:
    """Peak level in dB relative to full scale (-inf for digital silence)."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def is_silent(wave: np.ndarray, threshold_db: float = -60.0) -> bool:
    """True when no sample rises above `threshold_db` dBFS: nothing to listen to."""
    return peak_dbfs(wave) < threshold_db


def cap_audio(example: AudioQAExample, max_seconds: float) -> AudioQAExample:
    """`example` with its audio cut to the first `max_seconds` (the "head" policy of `data.audio`)."""
    limit = int(round(max_seconds * example.sampling_rate))
    if example.audio is None or example.audio.shape[0] <= limit:
        return example
    return replace(example, audio=example.audio[:limit], meta={**example.meta, "truncated": True})
