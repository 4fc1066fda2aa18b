"""Size limits per row (`data.limits`) and the prompt's character bound (`prompt_length`): named, never held whole."""

from __future__ import annotations

import json

import pytest

import audio_thinker.data.containers as containers
from audio_thinker.config_checks import ConfigError
from audio_thinker.data.datasets import ManifestDataset
from audio_thinker.data.errors import DataFormatError
from audio_thinker.data.manifest_formats import read_records
from audio_thinker.data.prompt_length import PromptBudget, fit_to_context
from audio_thinker.example import AudioQAExample
from audio_thinker.format.prompts import TEMPLATES
from audio_thinker.train import train
from tests.helpers.data import record, sine, write_audio, write_jsonl


def outcomes(records) -> list[str]:
    """Each record's id, or its error's kind."""
    return [r.example.id if r.error is None else r.error.kind for r in records]


def test_a_jsonl_line_over_max_row_bytes_is_refused_unparsed_naming_its_line_and_reading_goes_on(tmp_path, monkeypatch):
    long = record("long", "a.wav", question="x" * 5000)
    path = write_jsonl(tmp_path / "m.jsonl", [record("a", "a.wav"), long, record("b", "a.wav")])
    parsed, loads = [], json.loads
    monkeypatch.setattr(containers.json, "loads", lambda text: parsed.append(len(text)) or loads(text))
    records = list(read_records(path, max_row_bytes=1000))
    assert outcomes(records) == ["a", "row_too_long", "b"]
    size = len(json.dumps(long))
    assert str(records[1].error).startswith(f"{path}:2: the row is {size:,} bytes, more than data.max_row_bytes=1,000")
    assert max(parsed) < 1000  # the long line never reached the JSON parser
    assert outcomes(read_records(path, max_row_bytes=None)) == ["a", "long", "b"]  # null: no limit


def test_line_endings_a_bom_blank_lines_and_a_row_of_exactly_the_limit(tmp_path):
    first, second = json.dumps(record("a", "a.wav")), json.dumps(record("b", "a.wav"))
    path = tmp_path / "m.jsonl"
    path.write_bytes(first.encode() + b"\r\n\r\n" + second.encode())  # CRLF, a blank line, no final newline
    records = list(read_records(path, max_row_bytes=len(first)))
    assert outcomes(records) == ["a", "b"] and [r.where.line for r in records] == [1, 3]
    assert outcomes(read_records(path, max_row_bytes=len(first) - 1)) == ["row_too_long"] * 2
    path.write_bytes(b"\xef\xbb\xbf\n  " + first.encode() + b"\n")  # a BOM and a blank first line
    assert outcomes(read_records(path)) == ["a"]
    path.write_bytes(first.encode() + b"\n" + "é".encode("latin-1") + b"\n")
    with pytest.raises(DataFormatError, match=r"m.jsonl:2: not UTF-8 text"):
        list(read_records(path))


def test_a_json_list_item_over_max_row_bytes_is_refused_naming_its_item(tmp_path):
    items = [record("a", "a.wav"), record("long", "a.wav", question="é" * 600), record("b", "a.wav")]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(items, indent=1, ensure_ascii=False), encoding="utf-8")
    records = list(read_records(path, max_row_bytes=1000))  # the long item is < 1000 characters, > 1000 bytes
    assert outcomes(records) == ["a", "row_too_long", "b"]
    assert "(item 1): the row is 1," in str(records[1].error)


TRL_SYSTEM = {
    "prompt": [{"role": "system", "content": "s" * 101}, {"role": "user", "content": "High or low?"}],
    "audio": "a.wav",
    "solution": "high",
}


@pytest.mark.parametrize(
    ("row", "named"),
    [
        (record("q", "a.wav", question="q" * 101), "the question is 101 characters"),
        (record("o", "a.wav", choices=["high", "l" * 101]), "option 2 is 101 characters"),
        ({**record("a", "a.wav", answer="a" * 101), "choices": None}, "the answer is 101 characters"),
        (TRL_SYSTEM, "the system turn is 101 characters"),
    ],
)
def test_a_text_over_max_text_chars_is_refused_naming_which(tmp_path, row, named):
    path = write_jsonl(tmp_path / "m.jsonl", [row])
    (parsed,) = read_records(path, max_text_chars=100)
    assert parsed.error.kind == "text_too_long"
    assert f"{named}, more than data.max_text_chars=100" in str(parsed.error) and "m.jsonl:1" in str(parsed.error)
    (parsed,) = read_records(path, max_text_chars=101)
    assert parsed.error is None


def test_the_dataset_follows_on_error_for_a_row_over_a_limit(tmp_path):
    rows = [record("a", "a.wav"), record("long", "a.wav", question="x" * 2000), record("b", "a.wav")]
    path = write_jsonl(tmp_path / "m.jsonl", rows)
    with pytest.raises(DataFormatError, match=r"m.jsonl:2: the row is"):
        ManifestDataset(path, max_row_bytes=1000)
    with pytest.raises(DataFormatError, match=r"m.jsonl:2 \(id 'long'\): the question is 2,000 characters"):
        ManifestDataset(path, max_text_chars=1000)
    data = ManifestDataset(path, on_error="skip", max_row_bytes=1000)
    assert len(data) == 2 and [(s.kind, s.where) for s in data.skipped_records] == [("row_too_long", f"{path}:2")]
    with pytest.raises(ValueError, match="data.max_text_chars must be an integer >= 1, or null"):
        ManifestDataset(path, max_text_chars=0)


def test_a_bad_limit_fails_before_the_model_naming_its_key(train_cfg, tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [record("a", "a.wav")])
    manifest = ["data=manifest", f"data.train.path={path}", "data.val=null"]
    with pytest.raises(ConfigError, match=r"^data.max_row_bytes: must be an integer >= 1, or null \(no limit\)"):
        train(train_cfg([*manifest, "data.max_row_bytes=0"]))
    cfg = train_cfg([*manifest, "data.max_text_chars=7"])
    assert cfg.data.train.max_text_chars == 7 and cfg.data.train.max_row_bytes == 1 << 20  # both splits follow


class RecordingTemplate:
    """The think template, recording which examples it renders."""

    def __init__(self) -> None:
        self.rendered: list[str] = []

    def messages(self, example, with_audio=True):
        self.rendered.append(example.id)
        return TEMPLATES["think"].messages(example, with_audio=with_audio)


@pytest.fixture(scope="module")
def budget() -> PromptBudget:
    return PromptBudget.for_model("tiny-qwen2-audio", TEMPLATES["think"], 48)


def example(example_id: str, question: str) -> AudioQAExample:
    return AudioQAExample(example_id, question, "a", ["a", "b"], meta={"source": f"m.jsonl:{example_id}"})


def test_a_prompt_over_the_character_bound_is_refused_without_being_rendered_or_tokenised(budget, monkeypatch):
    template = RecordingTemplate()
    monkeypatch.setattr(budget, "template", template)
    long = example("9", "word " * (budget.max_text_chars // 5 + 1))
    tokens = budget.text_tokens([example("1", "High or low?"), long])
    assert tokens[0] > 0 and tokens[1] is None and template.rendered == ["1"]
    error = budget.problem(long, None, None)
    assert error.kind == "prompt_too_long" and str(error).startswith("m.jsonl:9 (id '9'): the question and options are")
    assert "cannot fit the model's context of 1024" in str(error)


@pytest.mark.parametrize(
    "text",
    [
        "consequently " * 500,
        "e\u0301" * 3000,
        "\u1100\u1161\u11a8" * 1000,
        "\u0391\u0314\u0342\u0345" * 1000,
        "音" * 3000,
    ],
)
def test_the_character_bound_never_refuses_a_prompt_that_fits(budget, text):
    # Long vocabulary entries, and characters NFC folds (e + accent, Hangul jamo, Greek with three marks): the
    # tokens are never fewer than the characters over chars_per_token.
    tokens = len(budget.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert tokens >= len(text) / budget.chars_per_token


def test_loading_for_training_drops_or_stops_at_a_prompt_over_the_character_bound(budget, tmp_path):
    write_audio(tmp_path / "a.wav", sine(440.0, 0.5, 16_000))
    rows = [record("a", "a.wav"), record("long", "a.wav", question="word " * (budget.max_text_chars // 5 + 1))]
    path = write_jsonl(tmp_path / "m.jsonl", rows)
    data = ManifestDataset(path, on_error="skip", max_text_chars=None)
    assert fit_to_context(budget, data, 30.0, "skip") == 1 and [ex.id for ex in data.examples] == ["a"]
    assert [(s.kind, s.where, s.id) for s in data.skipped_records] == [("prompt_too_long", f"{path}:2", "long")]
    with pytest.raises(DataFormatError, match=r"m.jsonl:2 \(id 'long'\): the question and options are"):
        fit_to_context(budget, ManifestDataset(path, max_text_chars=None), 30.0, "raise")
