"""Manifest formats: each adapter on small files, auto-detection, and the message of every bad record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audio_thinker.data.errors import DataFormatError, Location
from audio_thinker.data.manifest_formats import FORMATS, read_records, register_format, video_to_audio
from audio_thinker.example import AudioQAExample
from tests.helpers.data import record, write_jsonl


def _one(path: Path, **kwargs) -> AudioQAExample:
    (parsed,) = list(read_records(path, **kwargs))
    assert parsed.error is None, parsed.error
    return parsed.example


def test_jsonl_record_maps_every_field_and_keeps_the_rest_in_meta(tmp_path):
    path = write_jsonl(
        tmp_path / "m.jsonl",
        [
            record("a", "clips/a.wav", task="pitch", difficulty="hard", duration=1.5, speaker="x", meta={"k": 1}),
        ],
    )
    example = _one(path)
    assert (example.id, example.question, example.choices, example.answer) == (
        "a",
        "Is the tone high or low?",
        ["high", "low"],
        "high",
    )
    assert (example.task, example.difficulty, example.audio, example.answer_letter) == ("pitch", "hard", None, "A")
    assert example.meta["audio_path"] == str(tmp_path / "clips" / "a.wav")  # relative to the manifest's folder
    assert example.meta["source"] == f"{path}:1"
    assert (example.meta["duration"], example.meta["speaker"], example.meta["k"]) == (1.5, "x", 1)


def test_jsonl_paths_absolute_or_under_audio_root_and_open_questions(tmp_path):
    path = write_jsonl(
        tmp_path / "m.jsonl",
        [
            {"id": 7, "audio": "/data/abs.flac", "question": "What is said?", "answer": "hello"},
            {"id": 8, "audio": "rel.wav", "question": "What is said?", "answer": 42},
        ],
    )
    first, second = (p.example for p in read_records(path, audio_root=tmp_path / "root"))
    assert first.meta["audio_path"] == "/data/abs.flac" and first.choices is None and first.id == "7"
    assert second.meta["audio_path"] == str(tmp_path / "root" / "rel.wav") and second.answer == "42"
    assert (first.task, first.difficulty) == ("unknown", "unknown")


def test_answer_matching_a_choice_up_to_case_becomes_the_choice_text(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [record("a", "a.wav", answer=" HIGH ")])
    assert _one(path).answer == "high"


MMAU = [
    {
        "id": "mmau-1",
        "audio_id": "./test-mini-audios/1.wav",
        "question": "Which instrument plays?",
        "choices": ["Piano", "Violin", "Drums", "Flute"],
        "answer": "Violin",
        "dataset": "MusicCaps",
        "task": "music",
        "split": "test-mini",
        "category": "Instrument",
        "sub-category": "Identification",
        "difficulty": "easy",
    },
    {
        "id": "mmau-2",
        "audio_id": "./test-mini-audios/2.wav",
        "question": "What sound is heard?",
        "choices": ["Rain", "Wind"],
        "answer": "Rain",
        "task": "sound",
        "difficulty": "hard",
    },
]


def test_mmau_json_list(tmp_path):
    path = tmp_path / "mmau-test-mini.json"
    path.write_text(json.dumps(MMAU, indent=2))
    records = list(read_records(path))
    assert [r.format for r in records] == ["mmau", "mmau"]
    first, second = (r.example for r in records)
    assert (first.id, first.answer, first.task, first.difficulty) == ("mmau-1", "Violin", "music", "easy")
    assert first.meta["sub-category"] == "Identification" and first.meta["dataset"] == "MusicCaps"
    assert first.meta["audio_path"] == str(tmp_path / "test-mini-audios" / "1.wav")
    assert (second.task, second.answer_letter) == ("sound", "A")
    # JSON-list items are located by the line they start on and their index.
    assert records[1].where.index == 1 and records[1].where.line == 2 + len(json.dumps(MMAU[0], indent=2).splitlines())


AVQA = [
    {
        "id": 101,
        "video_name": "-HG3Omg_89c_000030",
        "video_id": 341,
        "question_text": "What is the man in the video doing?",
        "multi_choice": ["singing", "playing guitar", "talking", "dancing"],
        "answer": 1,
        "question_relation": "Both",
        "question_type": "Happening",
    },
    {
        "id": 102,
        "audio_path": "VGG10000/xyz.wav",
        "question_text": "Which Video clip is the loudest?",
        "multi_choice": ["dog", "cat"],
        "answer": "0",
    },
]


@pytest.mark.parametrize("container", ["json", "jsonl"])
def test_avqa_in_either_container(tmp_path, container):
    path = tmp_path / f"train_qa.{container}"
    path.write_text(json.dumps(AVQA) if container == "json" else "\n".join(json.dumps(r) for r in AVQA))
    first, second = (r.example for r in read_records(path, audio_root=tmp_path / "all_audios"))
    assert first.question == "What is the man in the audio doing?"  # "video" -> "audio", as Audio-Thinker does
    assert first.meta["question_text"] == "What is the man in the video doing?"  # the original is kept
    assert (first.id, first.answer, first.task) == ("101", "playing guitar", "avqa/happening")
    assert first.meta["audio_path"] == str(tmp_path / "all_audios" / "-HG3Omg_89c_000030.wav")
    assert (second.question, second.answer, second.task) == ("Which Audio clip is the loudest?", "dog", "avqa")
    assert second.meta["audio_path"] == str(tmp_path / "all_audios" / "VGG10000" / "xyz.wav")


def test_video_to_audio_keeps_case_and_only_touches_the_word():
    assert video_to_audio("Video: who speaks in the video?") == "Audio: who speaks in the audio?"
    assert video_to_audio("In which of the videos is a dog?") == "In which of the audio clips is a dog?"
    assert video_to_audio("Is this a videogame sound?") == "Is this a videogame sound?"
    assert video_to_audio("What is heard?") == "What is heard?"


def test_explicit_format_overrides_detection_and_unknown_format_is_refused(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(MMAU))
    assert list(read_records(path, format="jsonl"))[0].error.kind == "missing_field"  # no 'audio' in MMAU records
    with pytest.raises(ValueError, match="unknown manifest format 'csv'"):
        list(read_records(path, format="csv"))


def test_auto_detection_failure_names_the_keys_and_the_fix(tmp_path):
    path = write_jsonl(tmp_path / "odd.jsonl", [{"wav": "a.wav", "q": "?", "a": "x"}])
    with pytest.raises(DataFormatError) as caught:
        list(read_records(path))
    message = str(caught.value)
    assert "odd.jsonl:1" in message and "['a', 'q', 'wav']" in message and "format=" in message


def test_adding_a_format_is_one_adapter_and_one_registration(tmp_path):
    def clotho_record(data: dict, where: Location, audio_base: Path) -> AudioQAExample:
        return AudioQAExample(
            id=data["key"],
            question=data["q"],
            answer=data["a"],
            meta={"audio_path": str(audio_base / data["wav"]), "source": str(where)},
        )

    register_format("clotho_test", clotho_record, {"wav", "q", "a"})
    try:
        path = write_jsonl(tmp_path / "c.jsonl", [{"key": "k1", "wav": "a.wav", "q": "Is it raining?", "a": "yes"}])
        example = _one(path)
        assert (example.id, example.answer, example.meta["audio_path"]) == ("k1", "yes", str(tmp_path / "a.wav"))
    finally:
        del FORMATS["clotho_test"]


# Every bad record: (lines of the file, the bad line number, the kind, words the message must contain)
BAD_RECORDS = {
    "malformed_json": ('{"id": "a", "audio": "a.wav",', "malformed_json", ["malformed JSON line", "fix the line"]),
    "not_an_object": ('["a", "b"]', "malformed_json", ["expected a JSON object", "got list"]),
    "missing_question": (
        json.dumps({"id": "a", "audio": "a.wav", "answer": "x"}),
        "missing_field",
        ["missing required field 'question'", "jsonl format", "add it"],
    ),
    "missing_id": (
        json.dumps({"audio": "a.wav", "question": "q?", "answer": "x"}),
        "missing_field",
        ["missing required field 'id'"],
    ),
    "answer_not_in_choices": (
        json.dumps(record("a", "a.wav", answer="medium")),
        "answer_not_in_choices",
        ["answer 'medium' is not among the choices ['high', 'low']", "id 'a'"],
    ),
    "choices_not_a_list": (
        json.dumps(record("a", "a.wav", choices="high, low")),
        "bad_field",
        ["field 'choices' must be a list of option strings"],
    ),
    "one_choice": (json.dumps(record("a", "a.wav", choices=["high"])), "bad_field", ["at least two different"]),
    "one_text_twice": (
        json.dumps(record("a", "a.wav", choices=["high", "high"], answer="high")),
        "bad_field",
        ["at least two different"],
    ),
    "empty_question": (
        json.dumps(record("a", "a.wav", question="  ")),
        "bad_field",
        ["'question' must be a non-empty"],
    ),
    "negative_duration": (json.dumps(record("a", "a.wav", duration=-1)), "bad_field", ["'duration' must be a non-neg"]),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_each_bad_record_is_reported_with_file_line_and_reason_and_reading_goes_on(tmp_path, case):
    bad, kind, words = BAD_RECORDS[case]
    path = write_jsonl(tmp_path / "train.jsonl", [record("ok-1", "1.wav"), "", bad, record("ok-2", "2.wav")])
    records = list(read_records(path, format="jsonl"))
    assert [r.example.id for r in records if r.error is None] == ["ok-1", "ok-2"]  # nothing else is lost
    (error,) = [r.error for r in records if r.error is not None]
    assert error.kind == kind
    assert str(error).startswith(f"{path}:3")  # line 3: blank lines count, as in an editor
    for word in words:
        assert word in str(error)


def test_duplicate_ids_name_both_lines(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [record("a", "1.wav"), record("b", "2.wav"), record("a", "3.wav")])
    records = list(read_records(path))
    assert [r.error is None for r in records] == [True, True, False]
    assert str(records[2].error) == (
        f"{path}:3: duplicate id 'a' (first used at {path}:1); ids must be unique, rename one of them."
    )


def test_avqa_answer_index_out_of_range(tmp_path):
    path = tmp_path / "avqa.json"
    path.write_text(json.dumps([{**AVQA[0], "answer": 4}]))
    (parsed,) = list(read_records(path))
    assert parsed.error.kind == "answer_not_in_choices"
    assert "avqa.json:1 (item 0)" in str(parsed.error) and "answer index 4" in str(parsed.error)


def test_mmau_without_answers_points_to_test_mini(tmp_path):
    path = tmp_path / "mmau-test.json"
    path.write_text(json.dumps([{k: v for k, v in MMAU[0].items() if k != "answer"}]))
    (parsed,) = list(read_records(path))
    assert parsed.error.kind == "missing_field" and "test-mini" in str(parsed.error)


def test_a_json_list_syntax_error_names_its_line_and_keeps_earlier_items(tmp_path):
    path = tmp_path / "broken.json"
    good = json.dumps(MMAU[0])
    path.write_text(f'[\n{good},\n{{"id": "x", "question": }}\n]')
    records = list(read_records(path))
    assert records[0].example.id == "mmau-1"
    assert records[1].error.kind == "malformed_json"
    assert str(records[1].error).startswith(f"{path}:3: malformed JSON in item 1")


def test_missing_manifest(tmp_path):
    with pytest.raises(DataFormatError, match="manifest not found: .*nope.jsonl"):
        list(read_records(tmp_path / "nope.jsonl"))


def test_repeated_option_texts_are_read_and_the_original_record_is_kept(tmp_path):
    # MMAU test-mini e277d88f-...: ['1.63 seconds', '2.74 seconds', '1.53 seconds', '1.63 seconds'] -> '1.63 seconds';
    # and a one-item list category, as 13 test-mini items have.
    choices = ["1.63 seconds", "2.74 seconds", "1.53 seconds", "1.63 seconds"]
    item = {**MMAU[0], "choices": choices, "answer": "1.63 seconds", "category": ["Reasoning"]}
    path = tmp_path / "mmau.json"
    path.write_text(json.dumps([item]))
    example = _one(path)
    assert example.choices == choices and example.answer == "1.63 seconds"
    assert example.meta["category"] == "Reasoning"  # grouped with the plain-string "Reasoning" items
    assert example.meta["record"] == item and example.meta["source_format"] == "mmau"


def test_avqa_finds_r1_aqa_audio_names_from_video_name(tmp_path):
    # R1-AQA names the clip of video "-HG3Omg_89c_000030" as "-HG3Omg_89c_30.wav" (start in whole seconds).
    path = tmp_path / "train_qa.json"
    path.write_text(json.dumps(AVQA[:1]))
    audio_dir = tmp_path / "wavs"
    audio_dir.mkdir()
    (audio_dir / "-HG3Omg_89c_30.wav").touch()
    assert _one(path, audio_root=audio_dir).meta["audio_path"] == str(audio_dir / "-HG3Omg_89c_30.wav")
    (audio_dir / "-HG3Omg_89c_000030.wav").touch()  # the plain name wins when it exists
    assert _one(path, audio_root=audio_dir).meta["audio_path"] == str(audio_dir / "-HG3Omg_89c_000030.wav")


def test_audio_root_dot_is_the_working_directory(tmp_path, monkeypatch):
    # R1-AQA's files carry `audio_path`s relative to where its scripts run.
    elsewhere = tmp_path / "data"
    elsewhere.mkdir()
    path = elsewhere / "avqa.json"
    path.write_text(json.dumps([AVQA[1]]))
    monkeypatch.chdir(tmp_path)
    example = _one(path, audio_root=".")
    assert example.meta["audio_path"] == str(tmp_path / "VGG10000" / "xyz.wav")  # absolute, under the cwd


def test_json_syntax_messages_read_once_and_a_bad_record_keeps_its_id(tmp_path):
    path = write_jsonl(
        tmp_path / "m.jsonl", ['{"id": "a", "question": "unterminated', {**record("b", "x.wav"), "answer": "neither"}]
    )
    first, second = read_records(path)
    assert "(Unterminated string starting at column 25)" in str(first.error)  # not "starting at at column"
    assert first.record_id is None and second.record_id == "b"
