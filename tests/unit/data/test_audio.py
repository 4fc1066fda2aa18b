"""Audio loading: mono, resampling, truncation, WAV/FLAC, and the message of every unusable file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_thinker.data.audio import inspect_audio, is_silent, load_audio, read_audio, resample, truncate, window
from audio_thinker.data.errors import AudioLoadError
from tests.helpers.data import peak_hz, sine, write_audio


@pytest.mark.parametrize("orig_rate", [44_100, 22_050, 8_000])
def test_resampling_keeps_the_tone_frequency_and_duration(tmp_path, orig_rate):
    path = write_audio(tmp_path / "tone.wav", sine(1000.0, 1.0, orig_rate), orig_rate, "FLOAT")
    wave = load_audio(path, target_rate=16_000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(wave.shape[0] - 16_000) <= 1
    assert peak_hz(wave, 16_000) == pytest.approx(1000.0, abs=1.0)
    # Band-limited: the level is kept (a sine of amplitude 0.5 has RMS 0.354).
    assert np.sqrt(np.mean(wave[1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_resampling_removes_content_above_the_new_nyquist(tmp_path):
    # 10 kHz cannot exist at 16 kHz (Nyquist 8 kHz); naive decimation would alias it to 6 kHz.
    path = write_audio(tmp_path / "high.wav", sine(10_000.0, 1.0, 44_100), 44_100, "FLOAT")
    wave = load_audio(path, target_rate=16_000)
    assert np.max(np.abs(wave[500:-500])) < 0.01  # the clip's abrupt edges are broadband; skip them


def test_channels_are_averaged_to_mono(tmp_path):
    left = sine(440.0, 0.5, 16_000)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    wave = load_audio(write_audio(tmp_path / "stereo.wav", stereo, 16_000, "FLOAT"))
    np.testing.assert_allclose(wave, left / 2, atol=1e-6)
    opposite = np.stack([left, -left], axis=1)  # equal weights: anti-phase channels cancel
    assert np.max(np.abs(load_audio(write_audio(tmp_path / "anti.wav", opposite, 16_000, "FLOAT")))) < 1e-6


@pytest.mark.parametrize(
    ("name", "subtype", "tolerance"),
    [
        ("a.wav", "PCM_16", 1 / 32768),
        ("a.wav", "FLOAT", 0.0),
        ("a.flac", "PCM_16", 1 / 32768),
        ("a.flac", "PCM_24", 1e-6),
    ],
)
def test_wav_and_flac_round_trip(tmp_path, name, subtype, tolerance):
    tone = sine(523.25, 0.3, 16_000, amplitude=0.7)
    wave = load_audio(write_audio(tmp_path / name, tone, 16_000, subtype))
    np.testing.assert_allclose(wave, tone, atol=tolerance + 1e-7)


@pytest.mark.parametrize(("policy", "first_kept"), [("head", 0), ("center", 16_000), ("tail", 32_000)])
def test_truncation_policy_keeps_the_documented_part(tmp_path, policy, first_kept):
    ramp = (np.arange(48_000) / 48_000).astype(np.float32)  # 3 s; each sample's value tells where it came from
    wave = load_audio(write_audio(tmp_path / "ramp.wav", ramp, 16_000, "FLOAT"), max_seconds=1.0, truncation=policy)
    assert wave.shape[0] == 16_000
    np.testing.assert_allclose(wave, ramp[first_kept : first_kept + 16_000])


def test_truncation_is_exact_after_resampling_and_a_noop_for_short_clips(tmp_path):
    path = write_audio(tmp_path / "long.wav", sine(300.0, 2.5, 44_100), 44_100)
    assert load_audio(path, 16_000, max_seconds=1.25).shape[0] == 20_000
    assert load_audio(path, 16_000, max_seconds=10).shape[0] == pytest.approx(40_000, abs=1)
    with pytest.raises(ValueError, match="unknown truncation policy 'middle'"):
        truncate(np.zeros(10, np.float32), 5, "middle")


def _bytes_file(path, data: bytes):
    path.write_bytes(data)
    return path


def _wav_bytes(tmp_path) -> bytes:
    return write_audio(tmp_path / "good.wav", sine(440.0, 0.5, 16_000), 16_000, "PCM_16").read_bytes()


def _nan_wav(tmp_path):
    wave = sine(440.0, 0.5, 16_000)
    wave[100], wave[200] = np.nan, np.inf
    return write_audio(tmp_path / "nan.wav", wave, 16_000, "FLOAT")


BAD_FILES = {
    "missing_file": (lambda tmp: tmp / "nowhere.wav", ["nowhere.wav", "not found", "audio_root"]),
    "empty_audio": (lambda tmp: _bytes_file(tmp / "empty.wav", b""), ["empty.wav", "0 bytes"]),
    "zero_length": (lambda tmp: write_audio(tmp / "zero.wav", np.zeros(0, np.float32)), ["zero.wav", "zero samples"]),
    "corrupt_header": (
        lambda tmp: _bytes_file(tmp / "junk.wav", b"not audio at all" * 40),
        ["junk.wav", "header is corrupt or truncated", "Format not recognised"],
    ),
    "truncated_header": (
        lambda tmp: _bytes_file(tmp / "cut.wav", _wav_bytes(tmp)[:20]),
        ["cut.wav", "header is corrupt or truncated"],
    ),
    "nonfinite": (_nan_wav, ["nan.wav", "2 NaN/inf samples", "first at 0.006 s"]),
}
KINDS = {
    "missing_file": "missing_file",
    "empty_audio": "empty_audio",
    "zero_length": "empty_audio",
    "corrupt_header": "corrupt_audio",
    "truncated_header": "corrupt_audio",
    "nonfinite": "nonfinite_samples",
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_each_unusable_file_gives_a_clear_error(tmp_path, case):
    make, words = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(AudioLoadError) as caught:
        load_audio(path)
    message = str(caught.value)
    for word in words:
        assert word in message
    assert "remove its row" in message or "Check the path" in message  # every message says what to do
    assert caught.value.kind == KINDS[case]
    assert caught.value.path == str(path)


def test_an_error_survives_the_dataloader_worker_round_trip():
    # torch re-raises a worker's exception as type(err)(message): the class must accept a single message.
    error = AudioLoadError("x.wav: not found", kind="missing_file")
    assert str(type(error)("traceback text")) == "traceback text"


def test_a_wav_cut_short_is_read_but_flagged(tmp_path):
    data = _wav_bytes(tmp_path)
    (tmp_path / "half.wav").write_bytes(data[: len(data) // 2])
    raw = read_audio(tmp_path / "half.wav")
    assert raw.declared_bytes == len(data)
    assert raw.seconds == pytest.approx(0.25, abs=0.01)
    assert read_audio(tmp_path / "good.wav").declared_bytes is None


def test_silence_detection_threshold():
    assert is_silent(np.zeros(1000, np.float32))
    assert is_silent(sine(440.0, 0.1, 16_000, amplitude=10 ** (-70 / 20)))
    assert not is_silent(sine(440.0, 0.1, 16_000, amplitude=10 ** (-40 / 20)))


def test_paths_that_are_not_audio_files_say_what_they_are(tmp_path):
    loop = tmp_path / "loop.wav"
    loop.symlink_to(loop)
    dangling = tmp_path / "dangling.wav"
    dangling.symlink_to(tmp_path / "gone.wav")
    cases = {
        loop: ("bad_path", "symbolic link loop"),
        dangling: ("missing_file", "broken symbolic link"),
        Path("/dev/zero"): ("bad_path", "a character device"),
        tmp_path: ("bad_path", "a directory"),
    }
    for path, (kind, words) in cases.items():
        with pytest.raises(AudioLoadError) as caught:
            load_audio(path, max_seconds=1.0)
        assert caught.value.kind == kind and words in str(caught.value) and "not found" not in str(caught.value)


@pytest.mark.parametrize("policy", ["head", "center", "tail"])
def test_only_the_kept_window_is_decoded_and_it_matches_a_full_decode(tmp_path, policy, monkeypatch):
    path = write_audio(tmp_path / "long.wav", sine(300.0, 5.0, 44_100), 44_100)
    full = read_audio(path).samples[:, 0]
    reads = []
    original = sf.SoundFile.read
    monkeypatch.setattr(
        sf.SoundFile, "read", lambda self, frames=-1, **kw: reads.append(frames) or original(self, frames, **kw)
    )
    wave = load_audio(path, 16_000, max_seconds=1.0, truncation=policy)
    assert reads == [44_100]  # one second of the five was decoded
    start, count = window(full.shape[0], 44_100, policy)
    expected = truncate(resample(full[start : start + count], 44_100, 16_000), 16_000, policy)
    np.testing.assert_array_equal(wave, expected)


def test_inspect_scans_in_blocks_with_the_same_verdicts_as_read(tmp_path):
    stereo = np.stack([sine(440.0, 1.0, 8_000, 0.5), sine(440.0, 1.0, 8_000, 0.25)], axis=1)
    info = inspect_audio(write_audio(tmp_path / "s.wav", stereo, 8_000, "FLOAT"), block_frames=1000)
    assert (info.frames, info.sampling_rate, info.channels, info.seconds) == (8_000, 8_000, 2, 1.0)
    assert info.peak == pytest.approx(0.375, abs=1e-3)  # the mono mix-down's peak
    with pytest.raises(AudioLoadError, match="2 NaN/inf samples \\(first at 0.006 s\\)"):
        inspect_audio(_nan_wav(tmp_path), block_frames=150)  # the NaN and the inf sit in different blocks
