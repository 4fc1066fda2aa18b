"""`make-data`: the written WAV + JSONL dataset round-trips through ManifestDataset and is deterministic."""

from __future__ import annotations

import io
import json
import sys

import numpy as np

from audio_thinker.data.datasets import ManifestDataset
from audio_thinker.data.make_data import make_data_main, split_seed, write_synthetic_dataset
from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.data.validate import check_dataset
from tests.helpers.terminal import Terminal


def test_round_trip_through_the_manifest_dataset(tmp_path):
    manifests = write_synthetic_dataset(tmp_path, {"train": 12, "val": 6}, seed=3)
    assert set(manifests) == {"train", "val"}
    loaded = ManifestDataset(manifests["train"], max_audio_seconds=None)
    reference = SyntheticAudioQA(12, seed=split_seed(3, "train"))
    assert len(loaded) == 12
    for index in range(12):
        got, want = loaded[index], reference[index]
        assert (got.id, got.question, got.choices, got.answer, got.task, got.difficulty) == (
            want.id,
            want.question,
            want.choices,
            want.answer,
            want.task,
            want.difficulty,
        )
        assert got.sampling_rate == want.sampling_rate and got.audio.shape == want.audio.shape
        np.testing.assert_allclose(got.audio, want.audio, atol=1 / 32768)  # 16-bit PCM quantisation only
        assert got.meta["duration"] == round(want.audio.shape[0] / 16_000, 4)
    first = json.loads(manifests["train"].read_text().splitlines()[0])
    assert first["audio"] == f"audio/train/{first['id']}.wav"  # relative: the folder can be moved
    assert check_dataset(manifests["train"]).issues == []


def test_splits_are_disjoint_and_val_matches_the_in_memory_config(tmp_path):
    manifests = write_synthetic_dataset(tmp_path, {"train": 8, "val": 8}, seed=0)
    ids = {
        split: {json.loads(line)["id"] for line in path.read_text().splitlines()} for split, path in manifests.items()
    }
    assert not ids["train"] & ids["val"]
    # configs/data/synthetic.yaml validates on SyntheticAudioQA(seed=100003): at seed 0 they are the same data.
    assert ids["val"] == {SyntheticAudioQA(8, seed=100_003)[i].id for i in range(8)}


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = write_synthetic_dataset(tmp_path / "a", {"train": 5}, seed=1)["train"]
    b = write_synthetic_dataset(tmp_path / "b", {"train": 5}, seed=1)["train"]
    c = write_synthetic_dataset(tmp_path / "c", {"train": 5}, seed=2)["train"]
    assert a.read_bytes() == b.read_bytes()
    wavs = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.wav"))
    assert len(wavs) == 5
    assert all((tmp_path / "a" / w).read_bytes() == (tmp_path / "b" / w).read_bytes() for w in wavs)
    assert a.read_text() != c.read_text()


def test_cli_writes_the_requested_sizes_and_tasks(tmp_path, capsys):
    assert make_data_main([str(tmp_path), "--train-size", "4", "--val-size", "2", "--tasks", "count_beeps"]) == 0
    lines = (tmp_path / "train.jsonl").read_text().splitlines()
    assert len(lines) == 4 and len((tmp_path / "val.jsonl").read_text().splitlines()) == 2
    assert {json.loads(line)["task"] for line in lines} == {"count_beeps"}
    assert not (tmp_path / "test.jsonl").exists()
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["tasks"] == ["count_beeps"] and info["splits"] == {"train": 4, "val": 2}
    assert "train: 4 examples ->" in capsys.readouterr().out


def test_cli_shows_a_progress_bar_per_split_on_a_terminal(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert make_data_main([str(tmp_path), "--train-size", "3", "--val-size", "2"]) == 0
    drawn = sys.stderr.getvalue()
    assert "make-data train: 100%" in drawn and "3/3" in drawn
    assert "make-data val: 100%" in drawn and "2/2" in drawn
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal: no bar (logs and CI stay clean)
    assert make_data_main([str(tmp_path / "quiet"), "--train-size", "1", "--val-size", "1"]) == 0
    assert sys.stderr.getvalue() == ""
