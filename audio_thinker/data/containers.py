"""Manifest containers: a JSON-list or JSONL file read into raw records, each with the line it starts on.

A record that cannot be decoded becomes a `RawRecord` with an `error` naming its file and line, and reading goes
on (JSONL) or stops loudly (a JSON list has no reliable point to resume after a syntax error). Mapping a decoded
record onto an example is `audio_thinker.data.manifest_formats`'s job.

A JSONL file is read line by line: a line longer than `max_row_bytes` is passed over unparsed, in small reads,
and becomes an error record (`data.limits`). A JSON list is read whole; its items are measured once decoded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from audio_thinker.data.errors import DataFormatError, Location
from audio_thinker.data.limits import MAX_ROW_BYTES, row_too_long

_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 16  # bytes per read while passing over a line that is too long


@dataclass(frozen=True)
class RawRecord:
    """One decoded record (`data`) or the reason it could not be decoded (`error`), with its location."""

    where: Location
    data: dict | None = None
    error: DataFormatError | None = None


def iter_raw_records(path: str | Path, max_row_bytes: int | None = MAX_ROW_BYTES) -> Iterator[RawRecord]:
    """Yield every record of a JSON-list or JSONL file; a bad record yields an error and reading goes on.

    `max_row_bytes` (None: no limit) refuses longer rows without parsing them (see the module docstring).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"manifest not found: {path}; check the path.", kind="missing_manifest", path=path)
    with path.open("rb") as file:
        if _first_byte(file) == b"[":
            yield from _iter_json_list(path, _decode(path, file.read()), max_row_bytes)
        else:
            yield from _iter_jsonl(path, file, max_row_bytes)


def _first_byte(file: IO[bytes]) -> bytes:
    """The first byte that is not a BOM or whitespace (b"" for a blank file); the file is left at its start."""
    head = file.read(_CHUNK).removeprefix(_BOM).lstrip()
    while not head and (more := file.read(_CHUNK)):
        head = more.lstrip()
    file.seek(0)
    return head[:1]


def _decode(path: Path, data: bytes, line: int | None = None) -> str:
    """UTF-8 text (a leading BOM dropped), or the error that says the file is not a UTF-8 manifest."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        where = path if line is None else f"{path}:{line}"
        raise DataFormatError(
            f"{where}: not UTF-8 text ({err}); a manifest must be a UTF-8 JSON or JSONL file.",
            kind="malformed_json",
            path=path,
        ) from err


def _iter_lines(file: IO[bytes], limit: int | None) -> Iterator[tuple[bytes | None, int]]:
    """(line without its line ending, or None when longer than `limit` bytes; its length) for every line."""
    while line := file.readline(-1 if limit is None else limit + 2):  # + 2: room for a line's own "\r\n"
        complete = line.endswith(b"\n")
        content = line.removesuffix(b"\n").removesuffix(b"\r")
        if limit is None or len(content) <= limit:
            yield content, len(content)
            continue
        size = len(content)
        while not complete and (chunk := file.readline(_CHUNK)):  # the rest of the line, never held whole
            complete = chunk.endswith(b"\n")
            size += len(chunk.removesuffix(b"\n").removesuffix(b"\r") if complete else chunk)
        yield None, size


def _iter_jsonl(path: Path, file: IO[bytes], limit: int | None) -> Iterator[RawRecord]:
    """One JSON object per non-blank line; a line over `limit` bytes is an error record, never parsed."""
    for number, (raw, size) in enumerate(_iter_lines(file, limit), start=1):
        where = Location(path, line=number)
        if raw is None:
            yield RawRecord(where, error=row_too_long(where, size, limit))
            continue
        line = _decode(path, raw, number)
        if not line.strip():
            continue
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


def _iter_json_list(path: Path, text: str, limit: int | None) -> Iterator[RawRecord]:
    """Items of a top-level JSON list, each with the line it starts on (decoded one by one for that)."""
    decoder, line_at = json.JSONDecoder(), _LineCounter(text)
    pos, index = _skip_space(text, text.index("[") + 1), 0
    while pos < len(text) and text[pos] != "]":
        where, start = Location(path, line=line_at(pos), index=index), pos
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
        size = _item_bytes(text, start, pos, limit)
        yield _as_object(where, data) if size is None else RawRecord(where, error=row_too_long(where, size, limit))
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


def _item_bytes(text: str, start: int, end: int, limit: int | None) -> int | None:
    """The UTF-8 size of `text[start:end]` when it is over `limit` bytes, else None (a character is 1-4 bytes)."""
    if limit is None or 4 * (end - start) <= limit:
        return None
    size = len(text[start:end].encode("utf-8"))
    return size if size > limit else None


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
