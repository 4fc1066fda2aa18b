"""Manifest formats: map each record of a JSONL or JSON-list file (`data.containers`) onto an `AudioQAExample`.

Audio is not loaded here: the resolved path goes to `meta["audio_path"]` and the dataset loads it lazily.
Relative audio paths resolve against `audio_root` when given, else against the manifest's folder.

Formats (pick with `format=`, or "auto" to tell them apart by the first record's keys):
- `jsonl`: ours. `id`, `audio`, `question`, `answer`; optional `choices` (list), `task`, `difficulty`,
  `duration` (seconds), `meta` (dict). Any other key is kept in `meta`.
- `mmau`: MMAU's JSON: `id`, `audio_id` (path), `question`, `choices`, `answer` (option text), `task`,
  `sub-category`, `category` (a string, or a one-item list in 13 test-mini items), `difficulty`, `dataset`,
  `split`. The original record is kept as `meta["record"]` (for `predictions_official.json`).
- `avqa`: AVQA question files as used by R1-AQA / Audio-Thinker: `id`, `question_text`, `multi_choice`,
  `answer` (0-based index into `multi_choice`), `question_type`, `question_relation`, and the audio as
  `audio_path`, or else `video_name`: `<video_name>.wav`, or R1-AQA's name for the same clip when that file
  exists (`-HG3Omg_89c_000030` -> `-HG3Omg_89c_30.wav`: the YouTube id and the start in whole seconds).
  Relative paths resolve as for every format (`audio_root=.`: the working directory). The word "video" in the
  question becomes
  "audio", as Audio-Thinker does, since the model only hears the soundtrack (the original is kept in meta).
- `trl`, `swift`: TRL's prompt-only records (`prompt`: a string or messages) and ms-SWIFT's GRPO records
  (`messages` with `<audio>`, `audios`, `solution`); see `data.peer_formats`.
Either container works for every format: a JSON list (`[...]`) or one JSON object per line.

Adding a format: write `adapter(record, where, audio_base) -> AudioQAExample` and `register_format(...)` it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audio_thinker.data.containers import iter_raw_records
from audio_thinker.data.errors import DataFormatError, Location
from audio_thinker.data.limits import MAX_ROW_BYTES, MAX_TEXT_CHARS, text_too_long
from audio_thinker.example import AudioQAExample

Adapter = Callable[[dict, Location, Path], AudioQAExample]


@dataclass(frozen=True)
class ParsedRecord:
    """One record mapped onto an example (audio not loaded) or the reason it could not be."""

    where: Location
    example: AudioQAExample | None = None
    error: DataFormatError | None = None
    format: str | None = None  # the format used (decided by the first record in "auto" mode)
    record_id: str | None = None  # a bad record's own "id" field, when it has one (names it in logs)


@dataclass(frozen=True)
class RecordFormat:
    """A registered format: its adapter and the keys that identify it in "auto" mode."""

    name: str
    adapter: Adapter
    signature: frozenset[str]


FORMATS: dict[str, RecordFormat] = {}


def register_format(name: str, adapter: Adapter, signature: set[str] | frozenset[str]) -> None:
    """Make `name` usable as `format=name`; `signature` keys identify it in "auto" mode."""
    FORMATS[name] = RecordFormat(name, adapter, frozenset(signature))


# ------------------------------------------------------------------------------------------ field helpers


def _missing(where: Location, data: dict, name: str, fmt: str) -> DataFormatError:
    """The error for a required field that is absent or null."""
    return DataFormatError(
        f"{where}: missing required field '{name}' ({fmt} format; record has {sorted(data)}); add it or "
        "remove the record.",
        kind="missing_field",
        path=where.file,
    )


def _bad_field(where: Location, name: str, expected: str, value: Any) -> DataFormatError:
    """The error for a field of the wrong type or value."""
    return DataFormatError(
        f"{where}: field '{name}' must be {expected}, got {value!r:.80}; fix the record.",
        kind="bad_field",
        path=where.file,
    )


def _text(data: dict, name: str, where: Location, fmt: str, required: bool = True) -> str | None:
    """A string field (numbers are accepted and stringified, since ids and answers are often numbers)."""
    value = data.get(name)
    if value is None:
        if required:
            raise _missing(where, data, name, fmt)
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _bad_field(where, name, "a string", value)
    text = str(value).strip()
    if required and not text:
        raise _bad_field(where, name, "a non-empty string", value)
    return text


def _choices(data: dict, name: str, where: Location, fmt: str, required: bool) -> list[str] | None:
    """A list of non-empty option strings with at least two different texts.

    A text may repeat (27 MMAU test-mini items do): answers are graded by option text, so a letter pointing at
    either copy of the gold text is right. `audio-thinker data check` warns about such items.
    """
    value = data.get(name)
    if value is None:
        if required:
            raise _missing(where, data, name, fmt)
        return None
    if not isinstance(value, list) or not all(isinstance(c, str | int | float) for c in value):
        raise _bad_field(where, name, "a list of option strings", value)
    choices = [str(c).strip() for c in value]
    if len(set(choices)) < 2 or not all(choices):
        raise _bad_field(where, name, "at least two different, non-empty options", value)
    return choices


def _gold(answer: str, choices: list[str] | None, where: Location, example_id: str) -> str:
    """The gold option text: `answer` itself, or the option it equals up to case and surrounding space."""
    if choices is None or answer in choices:
        return answer
    folded = [c.casefold() for c in choices]
    if answer.casefold() in folded:
        return choices[folded.index(answer.casefold())]
    raise DataFormatError(
        f"{where} (id {example_id!r}): answer {answer!r} is not among the choices {choices}; the answer must be "
        "the text of one option.",
        kind="answer_not_in_choices",
        path=where.file,
    )


def _audio_path(value: str, audio_base: Path) -> Path:
    """Absolute paths as given; relative ones under `audio_base`."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else audio_base / path


def _duration(data: dict, where: Location) -> float | None:
    """The optional declared duration in seconds."""
    value = data.get("duration")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _bad_field(where, "duration", "a non-negative number of seconds", value)
    return float(value)


# -------------------------------------------------------------------------------------------------- adapters

_OURS = {"id", "audio", "question", "choices", "answer", "task", "difficulty", "duration", "meta"}


def _example(
    data: dict,
    where: Location,
    fmt: str,
    example_id: str,
    question: str,
    answer: str,
    choices: list[str] | None,
    meta: dict,
) -> AudioQAExample:
    """The example of a record of `fmt` (jsonl, mmau) whose fields are read: the gold answer checked against the
    choices, the optional `task` and `difficulty` read ("unknown" when absent)."""
    return AudioQAExample(
        id=example_id,
        question=question,
        answer=_gold(answer, choices, where, example_id),
        choices=choices,
        task=_text(data, "task", where, fmt, required=False) or "unknown",
        difficulty=_text(data, "difficulty", where, fmt, required=False) or "unknown",
        meta=meta,
    )


def jsonl_record(data: dict, where: Location, audio_base: Path) -> AudioQAExample:
    """Our manifest record -> example (unknown keys are kept in `meta`)."""
    example_id = _text(data, "id", where, "jsonl")
    audio = _text(data, "audio", where, "jsonl")
    question = _text(data, "question", where, "jsonl")
    answer = _text(data, "answer", where, "jsonl")
    choices = _choices(data, "choices", where, "jsonl", required=False)
    extra = data.get("meta") or {}
    if not isinstance(extra, dict):
        raise _bad_field(where, "meta", "an object", extra)
    meta = {**extra, **{k: v for k, v in data.items() if k not in _OURS}}
    meta.update(audio_path=str(_audio_path(audio, audio_base)), source=str(where), duration=_duration(data, where))
    return _example(data, where, "jsonl", example_id, question, answer, choices, meta)


_MMAU_META = ("sub-category", "category", "dataset", "split")


def _label(value: Any) -> Any:
    """A one-item list label (`["Reasoning"]`) as its item, so breakdowns group it with the plain string."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def mmau_record(data: dict, where: Location, audio_base: Path) -> AudioQAExample:
    """MMAU record -> example; `sub-category`, `category`, `dataset`, `split` and the record go to `meta`."""
    example_id = _text(data, "id", where, "mmau")
    audio = _text(data, "audio_id", where, "mmau")
    question = _text(data, "question", where, "mmau")
    choices = _choices(data, "choices", where, "mmau", required=True)
    if data.get("answer") is None:
        raise DataFormatError(
            f"{where}: missing required field 'answer' (mmau format); MMAU's `test` split has no public answers, "
            "use `test-mini` or add the answers.",
            kind="missing_field",
            path=where.file,
        )
    answer = _text(data, "answer", where, "mmau")
    meta = {key: _label(data[key]) for key in _MMAU_META if key in data}
    meta.update(audio_path=str(_audio_path(audio, audio_base)), source=str(where), record=data)
    return _example(data, where, "mmau", example_id, question, answer, choices, meta)


_VIDEO = re.compile(r"\b([Vv])ideo(s?)\b")


def video_to_audio(question: str) -> str:
    """'What is in the video?' -> 'What is in the audio?' (whole words, capital kept, 'videos' -> 'audio clips')."""
    return _VIDEO.sub(
        lambda m: ("A" if m.group(1) == "V" else "a") + ("udio clips" if m.group(2) else "udio"), question
    )


_START = re.compile(r"^(.+)_(\d+)$")


def _avqa_audio_name(video_name: str, audio_base: Path) -> str:
    """`<video_name>.wav`, or R1-AQA's `<youtube id>_<start seconds>.wav` when only that file exists."""
    plain = f"{video_name}.wav"
    match = _START.match(video_name)
    if match is None or (audio_base / plain).is_file():
        return plain
    r1_aqa = f"{match.group(1)}_{int(match.group(2))}.wav"  # "-HG3Omg_89c_000030" -> "-HG3Omg_89c_30.wav"
    return r1_aqa if (audio_base / r1_aqa).is_file() else plain


def avqa_record(data: dict, where: Location, audio_base: Path) -> AudioQAExample:
    """AVQA record -> example; `answer` is an index into `multi_choice` (see the module docstring)."""
    position = where.index if where.index is not None else where.line
    example_id = _text(data, "id", where, "avqa", required=False) or f"avqa-{position}"
    question = video_to_audio(_text(data, "question_text", where, "avqa"))
    choices = _choices(data, "multi_choice", where, "avqa", required=True)
    answer = data.get("answer")
    if answer is None:
        raise _missing(where, data, "answer", "avqa")
    if isinstance(answer, str) and answer.strip().isdigit():
        answer = int(answer)
    if isinstance(answer, int) and not isinstance(answer, bool):
        if not 0 <= answer < len(choices):
            raise DataFormatError(
                f"{where} (id {example_id!r}): answer index {answer} is not among the choices (0..{len(choices) - 1} "
                f"for {choices}); AVQA answers are 0-based indices into multi_choice.",
                kind="answer_not_in_choices",
                path=where.file,
            )
        gold = choices[answer]
    else:
        gold = _gold(_text(data, "answer", where, "avqa"), choices, where, example_id)
    audio = _text(data, "audio_path", where, "avqa", required=False)
    if audio is None:
        video = _text(data, "video_name", where, "avqa", required=False)
        if video is None:
            raise DataFormatError(
                f"{where}: missing required field 'audio_path' or 'video_name' (avqa format; record has "
                f"{sorted(data)}); add one of them.",
                kind="missing_field",
                path=where.file,
            )
        audio = _avqa_audio_name(video, audio_base)
    question_type = _text(data, "question_type", where, "avqa", required=False)
    meta = {key: data[key] for key in ("video_name", "video_id", "question_type", "question_relation") if key in data}
    meta.update(audio_path=str(_audio_path(audio, audio_base)), source=str(where), question_text=data["question_text"])
    return AudioQAExample(
        id=example_id,
        question=question,
        answer=gold,
        choices=choices,
        task=f"avqa/{question_type.lower()}" if question_type else "avqa",
        meta=meta,
    )


register_format("jsonl", jsonl_record, {"audio", "question"})
register_format("mmau", mmau_record, {"audio_id", "question", "choices"})
register_format("avqa", avqa_record, {"question_text", "multi_choice"})
# TRL's and ms-SWIFT's records register themselves (they use the helpers above, so they come after them).
from audio_thinker.data import peer_formats  # noqa: E402, F401

# ------------------------------------------------------------------------------------------------- reading


def detect_format(data: dict, where: Location) -> str:
    """The registered format whose signature keys the record carries (the most specific one wins)."""
    matches = [f for f in FORMATS.values() if f.signature <= data.keys()]
    if not matches:
        raise DataFormatError(
            f"{where}: cannot tell the manifest format from the record's keys {sorted(data)}; pass format= one of "
            f"{sorted(FORMATS)} (known signatures: "
            + ", ".join(f"{f.name}={sorted(f.signature)}" for f in FORMATS.values())
            + ").",
            kind="unknown_format",
            path=where.file,
        )
    return max(matches, key=lambda f: len(f.signature)).name


def read_records(
    path: str | Path,
    format: str = "auto",
    audio_root: str | Path | None = None,
    max_row_bytes: int | None = MAX_ROW_BYTES,
    max_text_chars: int | None = MAX_TEXT_CHARS,
) -> Iterator[ParsedRecord]:
    """Every record of the manifest mapped onto an example, or with the reason it could not be (in file order).

    A row over `max_row_bytes`, or with a text over `max_text_chars`, is such a reason (`data.limits`).
    """
    if format != "auto" and format not in FORMATS:
        raise ValueError(f"unknown manifest format {format!r}; use 'auto' or one of {sorted(FORMATS)}")
    path = Path(path)
    # Resolved now, so `audio_root=.` means the working directory of this command whatever happens later.
    audio_base = Path(audio_root).expanduser().resolve() if audio_root is not None else path.resolve().parent
    chosen = None if format == "auto" else FORMATS[format]
    first_seen: dict[str, Location] = {}
    for raw in iter_raw_records(path, max_row_bytes):
        if raw.error is not None:
            yield ParsedRecord(raw.where, error=raw.error, format=chosen and chosen.name)
            continue
        if chosen is None:  # "auto": the first well-formed record decides for the whole file
            chosen = FORMATS[detect_format(raw.data, raw.where)]
        try:
            example = chosen.adapter(raw.data, raw.where, audio_base)
            if (too_long := text_too_long(example, raw.where, max_text_chars)) is not None:
                raise too_long
        except DataFormatError as err:
            record_id = raw.data.get("id")
            record_id = str(record_id) if isinstance(record_id, str | int) and not isinstance(record_id, bool) else None
            yield ParsedRecord(raw.where, error=err, format=chosen.name, record_id=record_id)
            continue
        if example.id in first_seen:
            # Ids key predictions and logs; a second record with the same id would overwrite the first's results.
            yield ParsedRecord(
                raw.where,
                error=DataFormatError(
                    f"{raw.where}: duplicate id {example.id!r} (first used at {first_seen[example.id]}); ids must be "
                    "unique, rename one of them.",
                    kind="duplicate_id",
                    path=path,
                ),
                format=chosen.name,
                record_id=example.id,
            )
            continue
        first_seen[example.id] = raw.where
        example.meta.setdefault("source_format", chosen.name)  # lets `eval.scorer=auto` pick the benchmark's own rule
        yield ParsedRecord(raw.where, example=example, format=chosen.name)
