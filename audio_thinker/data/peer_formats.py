"""TRL's and ms-SWIFT's GRPO dataset records, read as audio QA examples (registered as manifest formats).

- `trl`: TRL's prompt-only records. `prompt` is a string (standard) or a list of messages (conversational,
  `{"role": ..., "content": str | [parts]}`); the question is the text of the last user turn, a system turn becomes
  the system message. The audio is `audio` (a path), `audios` (a list of one path) or an audio part of the user turn
  (`{"type": "audio", "audio": path}`). The gold answer is `solution` (TRL's examples' name), else `answer`.
- `swift`: ms-SWIFT's GRPO records: `messages` (`<audio>` marks where a clip goes), `audios` (paths, one per
  `<audio>`), `solution`. A final assistant turn is dropped, as ms-SWIFT does for GRPO.
Both: optional `id`, `choices` (the answer is then one option's text), `task`, `difficulty`, `duration`. Every
other column travels with the example (`meta["columns"]`) and reaches TRL-style reward functions by name, and the
prompt as written reaches them as `prompts` (`rewards.trl_style`). One audio clip per example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audio_thinker.data.errors import DataFormatError, Location
from audio_thinker.data.manifest_formats import (
    _audio_path,
    _bad_field,
    _choices,
    _duration,
    _gold,
    _text,
    register_format,
)
from audio_thinker.example import AudioQAExample

AUDIO_TAG = "<audio>"


def _messages(value: Any, name: str, where: Location) -> list[dict]:
    """A list of `{"role", "content"}` messages, or an error naming the field."""
    if not isinstance(value, list) or not value:
        raise _bad_field(where, name, "a non-empty list of messages", value)
    for message in value:
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise _bad_field(where, name, 'messages like {"role": "user", "content": "..."}', message)
    return value


def _text_and_audio(content: Any, where: Location, name: str) -> tuple[str, list[Any]]:
    """A message's text (parts joined, `<audio>` tags removed) and the clips its audio parts name."""
    if isinstance(content, str):
        return content.replace(AUDIO_TAG, " ").strip(), []
    if not isinstance(content, list):
        raise _bad_field(where, name, "message content as a string or a list of parts", content)
    texts, clips = [], []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text":
            texts.append(str(part.get("text", "")))
        elif isinstance(part, dict) and part.get("type") == "audio":
            clip = part.get("audio", part.get("path", part.get("audio_url")))
            if clip is not None:
                clips.append(clip)
    return " ".join(t.replace(AUDIO_TAG, " ").strip() for t in texts if t.strip()).strip(), clips


def _turns(messages: list[dict], name: str, where: Location) -> tuple[str, str | None, list[Any]]:
    """(the last user turn's text, the system turn's text or None, audio parts of the user turn)."""
    users = [m for m in messages if m["role"] == "user"]
    if not users:
        raise _bad_field(where, name, "messages with a user turn", messages)
    question, clips = _text_and_audio(users[-1]["content"], where, name)
    systems = [m for m in messages if m["role"] == "system"]
    system = _text_and_audio(systems[0]["content"], where, name)[0] if systems else None
    if not question:
        raise _bad_field(where, name, "a user turn with text (the question)", users[-1]["content"])
    return question, system, clips


def _clip(value: Any) -> str | None:
    """A path from an audio cell: a string, or `{"path": ...}` (a Hugging Face `Audio` cell, or a marker)."""
    if isinstance(value, dict):
        value = value.get("path")
    return str(value) if isinstance(value, str | Path) and str(value) else None


def _one_clip(data: dict, parts: list[Any], where: Location, fmt: str) -> str:
    """The record's single audio clip: `audio`, `audios` (one item) or an audio part of the prompt."""
    clips = list(parts)
    if data.get("audio") is not None:
        clips.append(data["audio"])
    audios = data.get("audios")
    if audios is not None:
        if not isinstance(audios, list):
            raise _bad_field(where, "audios", "a list of audio paths", audios)
        clips += audios
    if len(clips) != 1:
        found = "no audio" if not clips else f"{len(clips)} audio clips"
        raise DataFormatError(
            f"{where}: {found} ({fmt} format); an example has exactly one clip: give `audios` one path (or `audio` "
            "a path).",
            kind="missing_field" if not clips else "bad_field",
            path=where.file,
        )
    path = _clip(clips[0])
    if path is None:
        raise _bad_field(where, "audios" if audios is not None else "audio", "an audio file path", clips[0])
    return path


def _solution(data: dict, where: Location, fmt: str) -> str:
    """The gold answer: `solution`, else `answer` (a string or a number)."""
    name = "solution" if data.get("solution") is not None else "answer"
    if data.get(name) is None:
        raise DataFormatError(
            f"{where}: missing the gold answer ({fmt} format; record has {sorted(data)}): add `solution` (or "
            "`answer`); accuracy rewards and evaluation grade against it.",
            kind="missing_field",
            path=where.file,
        )
    return _text(data, name, where, fmt)


def _example(
    data: dict, where: Location, audio_base: Path, fmt: str, prompt: Any, question: str, system: str | None, clip: str
) -> AudioQAExample:
    """The example both formats build once they know the question, the system turn and the clip."""
    position = where.index if where.index is not None else where.line
    example_id = _text(data, "id", where, fmt, required=False) or f"{fmt}-{position}"
    choices = _choices(data, "choices", where, fmt, required=False)
    answer = _gold(_solution(data, where, fmt), choices, where, example_id)
    prompt_key = "prompt" if fmt == "trl" else "messages"
    meta = {
        "columns": {k: v for k, v in data.items() if k != prompt_key},
        "prompt": prompt,
        "conversational": not isinstance(prompt, str),
        "audio_path": str(_audio_path(clip, audio_base)),
        "source": str(where),
        "duration": _duration(data, where),
    }
    if system:
        meta["prompt_system"] = system
    return AudioQAExample(
        id=example_id,
        question=question,
        answer=answer,
        choices=choices,
        task=_text(data, "task", where, fmt, required=False) or "unknown",
        difficulty=_text(data, "difficulty", where, fmt, required=False) or "unknown",
        meta=meta,
    )


def trl_record(data: dict, where: Location, audio_base: Path) -> AudioQAExample:
    """A TRL prompt-only record (standard or conversational) -> example (module docstring)."""
    prompt = data.get("prompt")
    if isinstance(prompt, str):
        question, system, parts = prompt.replace(AUDIO_TAG, " ").strip(), None, []
        if not question:
            raise _bad_field(where, "prompt", "a non-empty string or a list of messages", prompt)
    else:
        question, system, parts = _turns(_messages(prompt, "prompt", where), "prompt", where)
    return _example(data, where, audio_base, "trl", prompt, question, system, _one_clip(data, parts, where, "trl"))


def swift_record(data: dict, where: Location, audio_base: Path) -> AudioQAExample:
    """An ms-SWIFT GRPO record -> example; a final assistant turn is dropped (module docstring)."""
    messages = list(_messages(data.get("messages"), "messages", where))
    while messages and messages[-1]["role"] == "assistant":
        messages.pop()
    question, system, parts = _turns(messages, "messages", where)
    tags = sum(str(m["content"]).count(AUDIO_TAG) for m in messages)
    audios = data.get("audios")
    if tags and isinstance(audios, list) and tags != len(audios):
        raise DataFormatError(
            f"{where}: {tags} <audio> tags but {len(audios)} `audios` (swift format); give one path per tag.",
            kind="bad_field",
            path=where.file,
        )
    return _example(
        data, where, audio_base, "swift", messages, question, system, _one_clip(data, parts, where, "swift")
    )


register_format("trl", trl_record, {"prompt"})
register_format("swift", swift_record, {"messages"})
