"""TRL's and ms-SWIFT's GRPO datasets load as they are: from JSONL (auto-detected, `data check` reports them like
our own formats) and from Hugging Face datasets (`format=auto`), the prompt's system turn reaching the model and
every other column reaching TRL-style rewards."""

from __future__ import annotations

import pytest

from audio_thinker.data.datasets import ManifestDataset
from audio_thinker.data.manifest_formats import read_records
from audio_thinker.data.validate import check_dataset, data_check_main
from audio_thinker.format.prompts import THINK
from audio_thinker.rewards.trl_style import reward_columns, reward_prompt
from tests.helpers.data import sine, write_audio, write_jsonl

SYSTEM = {"role": "system", "content": "You are a careful listener."}
TRL_STANDARD = {"prompt": "Is the tone high or low?", "audio": "tone.wav", "solution": "high", "level": 2}
TRL_CONVERSATIONAL = {
    "prompt": [SYSTEM, {"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": "High or low?"}]}],
    "audio": "tone.wav",
    "solution": "high",
    "choices": ["low", "high"],
}
SWIFT = {
    "messages": [SYSTEM, {"role": "user", "content": "<audio>High or low?"}, {"role": "assistant", "content": "high"}],
    "audios": ["tone.wav"],
    "solution": "high",
    "task": "pitch",
}


@pytest.fixture
def folder(tmp_path):
    write_audio(tmp_path / "tone.wav", sine(880.0, 0.5, 16_000))
    return tmp_path


@pytest.mark.parametrize(
    ("record", "fmt", "conversational"),
    [(TRL_STANDARD, "trl", False), (TRL_CONVERSATIONAL, "trl", True), (SWIFT, "swift", True)],
    ids=["trl-standard", "trl-conversational", "swift"],
)
def test_each_record_shape_is_detected_and_read_as_an_example(folder, record, fmt, conversational):
    manifest = write_jsonl(folder / "train.jsonl", [record, {**record, "id": "second"}])
    first, second = list(read_records(manifest))
    assert first.format == fmt and first.error is None and second.example.id == "second"
    example = first.example
    assert example.question in ("Is the tone high or low?", "High or low?") and example.answer == "high"
    assert example.meta["audio_path"] == str(folder / "tone.wav") and example.meta["conversational"] is conversational
    assert reward_columns(example)["solution"] == "high"
    data = ManifestDataset(manifest)
    assert data[0].audio.shape == (8_000,)


def test_a_conversational_prompt_keeps_its_system_turn_and_its_columns_reach_rewards(folder):
    trl, swift = (
        next(read_records(write_jsonl(folder / f"{n}.jsonl", [r]))).example
        for n, r in (("trl", TRL_CONVERSATIONAL), ("swift", SWIFT))
    )
    assert THINK.messages(trl)[0] == SYSTEM and THINK.messages(swift)[0] == SYSTEM  # the dataset's system turn
    assert trl.choices == ["low", "high"] and reward_prompt(trl) == TRL_CONVERSATIONAL["prompt"]
    assert reward_prompt(swift) == SWIFT["messages"][:2]  # the assistant turn is dropped, as ms-SWIFT does
    assert reward_columns(swift)["audios"] == ["tone.wav"] and swift.task == "pitch"
    standard = next(read_records(write_jsonl(folder / "std.jsonl", [TRL_STANDARD]))).example
    assert reward_columns(standard)["level"] == 2 and THINK.messages(standard)[0]["role"] == "user"


BAD = [
    ({"prompt": "Which?", "audio": "tone.wav"}, "missing the gold answer (trl format"),
    ({"prompt": "Which?", "solution": "x"}, "no audio (trl format)"),
    ({"prompt": [{"role": "user"}], "audio": "tone.wav", "solution": "x"}, "field 'prompt' must be messages like"),
    ({**SWIFT, "audios": ["tone.wav", "tone.wav"]}, "1 <audio> tags but 2 `audios` (swift format)"),
    ({**SWIFT, "messages": [{"role": "user", "content": "<audio>"}]}, "a user turn with text (the question)"),
]


def test_data_check_reports_these_formats_like_our_own(folder, capsys):
    manifest = write_jsonl(folder / "swift.jsonl", [SWIFT, *(bad for bad, _ in BAD if "messages" in bad)])
    report = check_dataset(manifest)
    assert report.format == "swift" and report.usable == 1 and report.counts["task"]["pitch"] == 1
    assert [issue.where for issue in report.issues] == [f"{manifest}:2", f"{manifest}:3"]
    swift_messages = " ".join(issue.message for issue in report.issues)
    manifest = write_jsonl(folder / "trl.jsonl", [TRL_STANDARD, *(bad for bad, _ in BAD if "prompt" in bad)])
    assert data_check_main([str(manifest)]) == 1
    out = capsys.readouterr().out
    assert f"{manifest} (format: trl)" in out and "usable examples: 1" in out and "errors: 3" in out
    for bad, message in BAD:
        assert message in (swift_messages if "messages" in bad else out)


def test_hugging_face_datasets_in_these_formats_load_with_format_auto(folder):
    datasets = pytest.importorskip("datasets")
    from audio_thinker.data.hf_dataset import HFAudioQADataset

    clip = {"bytes": (folder / "tone.wav").read_bytes(), "path": "t.wav"}
    prompt = [SYSTEM, {"role": "user", "content": "High or low?"}]  # Arrow needs one content type per column
    rows = [{**TRL_CONVERSATIONAL, "prompt": prompt, "audio": clip}] * 2
    trl = datasets.Dataset.from_list(rows).cast_column("audio", datasets.Audio())
    trl.save_to_disk(str(folder / "trl_ds"))
    data = HFAudioQADataset(str(folder / "trl_ds"), split="train", format="auto")
    assert data.format == "trl" and len(data) == 2 and data[1].audio.shape == (8_000,)
    assert data[0].meta["conversational"] and THINK.messages(data[0])[0] == SYSTEM
    write_jsonl(folder / "swift.jsonl", [SWIFT, {**SWIFT, "solution": "low"}])  # audios as paths beside the file
    data = HFAudioQADataset(str(folder / "swift.jsonl"), split="train", format="swift")
    assert [e.answer for e in data.examples] == ["high", "low"] and data[0].audio.shape == (8_000,)
    assert reward_columns(data[1])["audios"] == ["tone.wav"]
    swift = datasets.Dataset.from_list([{**SWIFT, "audios": [clip]}] * 2)  # ms-SWIFT's audios as a list of clips
    swift.cast_column("audios", datasets.List(datasets.Audio())).save_to_disk(str(folder / "swift_ds"))
    data = HFAudioQADataset(str(folder / "swift_ds"), split="train", format="auto")
    assert data.format == "swift" and data[1].audio.shape == (8_000,) and data[0].question == "High or low?"


def test_an_empty_instruction_asks_the_question_as_the_dataset_wrote_it(folder):
    from audio_thinker.format.prompts import PromptTemplate

    standard = next(read_records(write_jsonl(folder / "std.jsonl", [TRL_STANDARD]))).example
    assert PromptTemplate(instruction="").user_text(standard) == "Is the tone high or low?"
    assert THINK.user_text(standard).startswith("Is the tone high or low?\nFirst think")
