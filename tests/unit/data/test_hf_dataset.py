"""`data=hf_dataset`: datasets the test builds offline (save_to_disk, Parquet, audiofolder), columns mapped by
config, audio decoded by soundfile (no torchcodec), and errors that name the dataset, the row and the setting."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf

datasets = pytest.importorskip(
    "datasets", reason="data=hf_dataset needs the optional `datasets` package: pip install -e '.[hf]'"
)

from audio_thinker.data.errors import AudioLoadError, DataFormatError, SkippedExample  # noqa: E402
from audio_thinker.data.hf_dataset import HFAudioQADataset  # noqa: E402
from audio_thinker.example import AudioQAExample  # noqa: E402


def tone(seconds: float, rate: int = 16_000, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def wav_bytes(wave: np.ndarray, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def audio_table(rows: list[dict]) -> datasets.Dataset:
    """A Dataset whose `audio` column is a `datasets.Audio` feature (cast from bytes, as the Hub stores it)."""
    table = datasets.Dataset.from_list(rows)
    return table.cast_column("audio", datasets.Audio(decode=False))


@pytest.fixture
def saved(tmp_path):
    """A DatasetDict saved to disk: train (2 rows, one at 44.1 kHz) and validation (1 row)."""
    train = audio_table(
        [
            {
                "audio": {"bytes": wav_bytes(tone(1.0)), "path": "a.wav"},
                "question": "Which tone?",
                "choices": ["low", "high"],
                "answer": "high",
                "uid": "a",
                "kind": "pitch",
            },
            {
                "audio": {"bytes": wav_bytes(tone(3.0, 44_100), 44_100), "path": "b.wav"},
                "question": "How long?",
                "choices": ["1 s", "3 s"],
                "answer": "3 s",
                "uid": "b",
                "kind": "duration",
            },
        ]
    )
    validation = audio_table(
        [
            {
                "audio": {"bytes": wav_bytes(tone(0.5)), "path": "c.wav"},
                "question": "Loud?",
                "choices": ["yes", "no"],
                "answer": "no",
                "uid": "c",
                "kind": "loudness",
            }
        ]
    )
    datasets.DatasetDict({"train": train, "validation": validation}).save_to_disk(str(tmp_path / "ds"))
    return tmp_path / "ds"


def test_a_saved_dataset_dict_reads_as_examples_with_their_audio(saved):
    data = HFAudioQADataset(str(saved), split="train", id_column="uid", task_column="kind", max_audio_seconds=2.0)
    assert len(data) == 2
    first, second = data[0], data[1]
    assert isinstance(first, AudioQAExample)
    assert (first.id, first.question, first.choices, first.answer, first.task) == (
        "a",
        "Which tone?",
        ["low", "high"],
        "high",
        "pitch",
    )
    np.testing.assert_allclose(first.audio, tone(1.0), atol=1e-6)  # float WAV bytes, decoded by soundfile
    assert second.audio.shape == (32_000,)  # 3 s at 44.1 kHz: resampled to 16 kHz and cut to 2 s
    assert second.meta["source"] == f"{saved} (item 1)" and second.meta["row"] == 1
    validation = HFAudioQADataset(str(saved), split="validation")
    assert [validation[0].id, validation[0].answer] == ["validation-0", "no"]


def test_parquet_with_letter_answers_and_choices_as_json_strings(tmp_path):
    table = audio_table(
        [
            {
                "audio": {"bytes": wav_bytes(tone(0.5)), "path": None},
                "prompt": "Q1",
                "options": '["cat", "dog"]',
                "label": "B",
            },
            {
                "audio": {"bytes": wav_bytes(tone(0.5)), "path": None},
                "prompt": "Q2",
                "options": '["A", "B", "C"]',
                "label": "A",
            },  # an option whose text is a letter: the text wins over the letter
        ]
    )
    table.to_parquet(str(tmp_path / "train.parquet"))
    data = HFAudioQADataset(
        str(tmp_path / "train.parquet"), question_column="prompt", choices_column="options", answer_column="label"
    )
    assert [(e.question, e.choices, e.answer) for e in data.examples] == [
        ("Q1", ["cat", "dog"], "dog"),
        ("Q2", ["A", "B", "C"], "A"),
    ]
    assert data[0].audio.shape == (8_000,)


def test_an_audiofolder_with_index_answers(tmp_path):
    folder = tmp_path / "folder" / "train"
    folder.mkdir(parents=True)
    sf.write(folder / "x.wav", tone(0.25), 16_000)
    rows = [{"file_name": "x.wav", "question": "How many beeps?", "choices": ["1", "2", "3"], "answer": 2}]
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    data = HFAudioQADataset(str(tmp_path / "folder"), split="train")
    assert data[0].answer == "3"  # an integer answer is a 0-based option index
    np.testing.assert_allclose(data[0].audio, tone(0.25), atol=1 / 32768)


def test_a_class_label_answer_gives_its_names_as_the_options(tmp_path):
    features = datasets.Features(
        {
            "audio": datasets.Audio(decode=False),
            "question": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["dog", "rain", "siren"]),
        }
    )
    table = datasets.Dataset.from_dict(
        {"audio": [{"bytes": wav_bytes(tone(0.2)), "path": None}], "question": ["What is heard?"], "label": [2]}
    ).cast(features)
    table.save_to_disk(str(tmp_path / "esc"))
    data = HFAudioQADataset(str(tmp_path / "esc"), choices_column=None, answer_column="label")
    assert (data.examples[0].choices, data.examples[0].answer) == (["dog", "rain", "siren"], "siren")


def test_a_missing_column_names_the_setting_and_the_columns_there_are(saved):
    with pytest.raises(DataFormatError) as err:
        HFAudioQADataset(str(saved), question_column="text")
    message = str(err.value)
    assert "no column 'text' for the question (question_column)" in message and "'question'" in message
    assert "data.train.question_column=<column>" in message


def test_an_unknown_split_lists_the_splits(saved):
    with pytest.raises(DataFormatError, match=r"no split 'test'; it has \['train', 'validation'\]"):
        HFAudioQADataset(str(saved), split="test")


def test_bad_rows_and_bad_clips_raise_or_are_skipped(tmp_path):
    table = audio_table(
        [
            {
                "audio": {"bytes": wav_bytes(tone(0.2)), "path": None},
                "question": "ok",
                "choices": ["a", "b"],
                "answer": "b",
            },
            {
                "audio": {"bytes": wav_bytes(tone(0.2)), "path": None},
                "question": "bad gold",
                "choices": ["a", "b"],
                "answer": "z",
            },
            {
                "audio": {"bytes": b"RIFF not audio", "path": None},
                "question": "bad clip",
                "choices": ["a", "b"],
                "answer": "a",
            },
        ]
    )
    table.save_to_disk(str(tmp_path / "mixed"))
    with pytest.raises(DataFormatError, match=r"mixed \(item 1\).*answer 'z' is not among the choices"):
        HFAudioQADataset(str(tmp_path / "mixed"))
    data = HFAudioQADataset(str(tmp_path / "mixed"), on_error="skip")
    assert len(data) == 2 and [s.kind for s in data.skipped_records] == ["answer_not_in_choices"]
    skipped = data[1]
    assert isinstance(skipped, SkippedExample) and skipped.kind == "corrupt_audio" and "(item 2)" in skipped.where
    data.on_error = "raise"
    with pytest.raises(AudioLoadError, match=r"mixed \(item 2\) \(id 'train-2'\): cannot decode audio"):
        data[1]


def test_a_text_over_max_text_chars_is_a_bad_row(tmp_path):
    clip = {"bytes": wav_bytes(tone(0.2)), "path": None}
    rows = [{"audio": clip, "question": "q" * 101, "choices": ["a", "b"], "answer": "a"}]
    audio_table([*rows, {"audio": clip, "question": "ok", "choices": ["a", "b"], "answer": "b"}]).save_to_disk(
        str(tmp_path / "long")
    )
    named = r"long \(item 0\) \(id 'train-0'\): the question is 101 characters, more than data.max_text_chars=100"
    with pytest.raises(DataFormatError, match=named):
        HFAudioQADataset(str(tmp_path / "long"), max_text_chars=100)
    data = HFAudioQADataset(str(tmp_path / "long"), on_error="skip", max_text_chars=100)
    assert len(data) == 1 and [s.kind for s in data.skipped_records] == ["text_too_long"]


def test_an_uncached_hub_dataset_offline_names_the_id(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path)
    with pytest.raises(DataFormatError, match=r"nobody/no-such-audio-set: .*HF_HUB_OFFLINE=1"):
        HFAudioQADataset("nobody/no-such-audio-set")


def test_a_path_that_is_neither_a_folder_nor_a_hub_id_says_so(tmp_path):
    with pytest.raises(DataFormatError, match="no such dataset file or folder"):
        HFAudioQADataset(str(tmp_path / "nowhere" / "ds"))


def test_train_runs_a_step_on_an_hf_dataset(train_cfg, saved):
    from audio_thinker.train import train

    cfg = train_cfg(
        [
            "data=hf_dataset",
            f"data.train.path={saved}",
            "data.train.id_column=uid",
            "trainer.max_steps=1",
            "callbacks.model_checkpoint=null",
            "callbacks.export=null",
        ]
    )
    assert cfg.data.val.split == "validation" and cfg.data.val.id_column == "uid"  # val reuses train's mapping
    metrics = train(cfg)
    assert "reward/total" in metrics and metrics["data/skipped"] == 0
