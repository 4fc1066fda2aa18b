"""Manifest containers: a JSON-list or JSONL file read into raw records, each with the line it starts on.

A record that cannot be decoded becomes a `RawRecord` with an `error` naming its file and line, and reading goes
on (JSONL) or stops loudly (a JSON list has no reliable point to resume after a syntax error). Mapping a decoded
record onto an example is `audio_thinker.data.formats`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audio_thinker.data.errors import DataFormatError, Location


@dataclass(frozen=True)
class RawRecord:
    """One decoded record (`data`) or the reason it could not be decoded (`error`), with its location."""

    where: Location
    data: dict | None = None
    error: DataFormatError | None = None


def iter_raw_records(path: str | Path) -> Iterator[RawRecord]:
    """Yield every record of a JSON-list or JSONL file; a bad record yields an error and reading goes on."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"manifest not found: {path}; check the path.", kind="missing_manifest", path=path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataFormatError(
            f"{path}: not UTF-8 text ({err}); a manifest must be a UTF-8 JSON or JSONL file.",
            kind="malformed_json",
            path=path,
        ) from err
    if text.lstrip().startswith("["):
        yield from _iter_json_list(path, text)
    else:
        yield from _iter_jsonl(path, text)


def _iter_jsonl(path: Path, text: str) -> Iterator[RawRecord]:
    """One JSON object per non-blank line."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = Location(path, line=number)
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            yield RawRecord(
                where,
                error=DataFormatError(
                    f"{where}: malformed JSON line ({_json_problem(err)}); fix the line or delete it.",
                    kind="malformed_json",
                    path=path,
                ),
            )
            continue
        yield _as_object(where, data)


def _iter_json_list(path: Path, text: str) -> Iterator[RawRecord]:
    """Items of a top-level JSON list, each with the line it starts on (decoded one by one for that)."""
    decoder, line_at = json.JSONDecoder(), _LineCounter(text)
    pos, index = _skip_space(text, text.index("[") + 1), 0
    while pos < len(text) and text[pos] != "]":
        where = Location(path, line=line_at(pos), index=index)
        try:
            data, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            # Past a syntax error a JSON list has no reliable resynchronisation point: stop here, loudly.
            yield RawRecord(
                where,
                error=DataFormatError(
                    f"{path}:{err.lineno}: malformed JSON in item {index} ({_json_problem(err)}); fix the "
                    "file: items after this point cannot be read.",
                    kind="malformed_json",
                    path=path,
                ),
            )
            return
        yield _as_object(where, data)
        pos, index = _skip_space(text, pos), index + 1
        if pos < len(text) and text[pos] == ",":
            pos = _skip_space(text, pos + 1)
        elif pos < len(text) and text[pos] != "]":
            line = line_at(pos)
            yield RawRecord(
                Location(path, line=line, index=index),
                error=DataFormatError(
                    f"{path}:{line}: malformed JSON after item {index - 1} (expected ',' or ']'); fix the file: items "
                    "after this point cannot be read.",
                    kind="malformed_json",
                    path=path,
                ),
            )
            return


def _json_problem(err: json.JSONDecodeError) -> str:
    """ "Expecting ',' delimiter at column 9"; json's own "... starting at" messages do not repeat the "at"."""
    return f"{err.msg.removesuffix(' at')} at column {err.colno}"


class _LineCounter:
    """The 1-based line of a position in `text`, for positions that only grow: each call counts the newlines
    since the previous one, so numbering every item of a 40k-item JSON list reads the text once, not 40k times."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.line = text, 0, 1

    def __call__(self, pos: int) -> int:
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _skip_space(text: str, pos: int) -> int:
    """Index of the next non-whitespace character at or after `pos`."""
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _as_object(where: Location, data: Any) -> RawRecord:
    """Wrap a decoded value, rejecting anything that is not a JSON object."""
    if isinstance(data, dict):
        return RawRecord(where, data=data)
    return RawRecord(
        where,
        error=DataFormatError(
            f"{where}: expected a JSON object with the example's fields, got {type(data).__name__}; fix the record.",
            kind="malformed_json",
            path=where.file,
        ),
    )
