"""ManifestDataset: lazy loading at the target rate, and both error policies."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from audio_thinker.data.datasets import ManifestDataset
from audio_thinker.data.errors import AudioLoadError, DataFormatError, SkippedExample
from tests.helpers.data import peak_hz, record, sine, write_audio, write_jsonl


@pytest.fixture
def manifest(tmp_path):
    """Three examples: 16 kHz mono, 44.1 kHz stereo 3 s, and a corrupt file; plus one bad record (line 4)."""
    write_audio(tmp_path / "a.wav", sine(440.0, 1.0, 16_000))
    stereo = np.stack([sine(880.0, 3.0, 44_100)] * 2, axis=1)
    write_audio(tmp_path / "sub" / "b.flac", stereo, 44_100)
    (tmp_path / "c.wav").write_bytes(b"garbage" * 50)
    return write_jsonl(
        tmp_path / "train.jsonl",
        [
            record("a", "a.wav"),
            record("b", "sub/b.flac"),
            record("c", "c.wav"),
            record("d", "a.wav", answer="nope"),
        ],
    )


def test_audio_is_loaded_lazily_mono_resampled_and_capped(manifest):
    dataset = ManifestDataset(manifest, max_audio_seconds=2.0, on_error="skip")
    assert len(dataset) == 3 and all(e.audio is None for e in dataset.examples)  # nothing decoded up front
    a, b = dataset[0], dataset[1]
    assert (a.id, a.audio.shape, a.sampling_rate, a.meta["audio_seconds"]) == ("a", (16_000,), 16_000, 1.0)
    assert b.audio.shape == (32_000,) and b.audio.dtype == np.float32  # 3 s at 44.1 kHz -> first 2 s at 16 kHz
    assert peak_hz(b.audio, 16_000) == pytest.approx(880.0, abs=1.0)
    assert dataset.examples[1].audio is None  # items are fresh copies; the index stays light


def test_skip_counts_and_logs_bad_records_and_bad_audio(manifest, caplog):
    with caplog.at_level(logging.WARNING, logger="audio_thinker.data"):
        dataset = ManifestDataset(manifest, on_error="skip")
        skipped = dataset[2]
    (bad_record,) = dataset.skipped_records
    assert bad_record.kind == "answer_not_in_choices" and bad_record.where == f"{manifest}:4"
    assert isinstance(skipped, SkippedExample)
    assert (skipped.id, skipped.where, skipped.kind) == ("c", f"{manifest}:3", "corrupt_audio")
    logged = caplog.text
    assert f"{manifest}:4" in logged and "answer 'nope' is not among the choices" in logged
    assert f"skipping example 'c' at {manifest}:3: cannot decode audio file" in logged and "c.wav" in logged
    assert f"skipping example 'd' at {manifest}:4: answer 'nope' is not among the choices" in logged  # no repeats
    assert "skipped 1 of 4 records" in logged


def test_raise_stops_at_the_first_bad_record(manifest):
    with pytest.raises(DataFormatError, match=r"train.jsonl:4 \(id 'd'\): answer 'nope'"):
        ManifestDataset(manifest, on_error="raise")


def test_raise_on_bad_audio_names_manifest_line_id_and_file(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [record("gone", "missing.wav")])
    dataset = ManifestDataset(path)
    with pytest.raises(AudioLoadError) as caught:
        dataset[0]
    message = str(caught.value)
    assert message.startswith(f"{path}:1 (id 'gone'): audio file not found: ") and "missing.wav" in message
    assert caught.value.kind == "missing_file"


def test_a_manifest_with_nothing_usable_fails_even_when_skipping(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", ["{broken", record("x", "a.wav", answer="nope")])
    with pytest.raises(DataFormatError, match="no usable examples \\(2 records skipped\\)"):
        ManifestDataset(path, on_error="skip")


def test_bad_arguments_are_refused(manifest):
    with pytest.raises(ValueError, match="on_error must be one of"):
        ManifestDataset(manifest, on_error="ignore")
    with pytest.raises(ValueError, match="unknown truncation policy"):
        ManifestDataset(manifest, truncation="middle")


def test_a_clip_under_the_minimum_duration_is_loaded_with_one_warning(tmp_path, caplog):
    write_audio(tmp_path / "blip.wav", np.full(1, 0.5, np.float32))  # one sample
    path = write_jsonl(tmp_path / "m.jsonl", [record("blip", "blip.wav")])
    dataset = ManifestDataset(path)
    with caplog.at_level(logging.WARNING, logger="audio_thinker.data"):
        for _epoch in range(2):
            assert dataset[0].audio.shape == (1,)
    warnings = [r.getMessage() for r in caplog.records if "lasts only" in r.getMessage()]
    assert len(warnings) == 1 and "(id 'blip')" in warnings[0] and "under 0.1 s" in warnings[0]
