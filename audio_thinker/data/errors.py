"""The data errors (each names the file, the place and what to do) and the record of a skipped example.

Error classes take the message as their only positional argument so they survive the trip from a
DataLoader worker back to the main process (torch re-raises worker errors as `type(err)(message)`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("audio_thinker.data")


class DataError(ValueError):
    """Base of every problem with user data; `kind` is a short machine-readable reason code."""

    def __init__(self, message: str, *, kind: str = "unknown", path: str | Path | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.path = None if path is None else str(path)


class AudioLoadError(DataError):
    """An audio file that cannot be used: missing, empty, undecodable or with NaN/inf samples."""


class DataFormatError(DataError):
    """A manifest record that cannot be used: malformed JSON, a missing or ill-typed field, a bad answer."""


@dataclass(frozen=True)
class Location:
    """Where a record sits: its manifest file, 1-based line, and 0-based index in a JSON list."""

    file: Path
    line: int | None = None
    index: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        return f"{where} (item {self.index})" if self.index is not None else where


@dataclass  # not frozen: Lightning's batch transfer rebuilds the dataclasses it finds in a batch
class SkippedExample:
    """Stands in for an example that could not be loaded under `on_error="skip"`; collate counts it."""

    id: str | None
    where: str
    reason: str
    kind: str = "unknown"


ON_ERROR = ("raise", "skip")


def check_on_error(on_error: str) -> str:
    """Validate an `on_error` policy name."""
    if on_error not in ON_ERROR:
        raise ValueError(f"data.on_error must be one of {list(ON_ERROR)}, got {on_error!r}")
    return on_error


def without_location(message: str, where: str, example_id: str | None = None) -> str:
    """`message` without a leading copy of `where` (and of the example id after it): it is printed in front."""
    if not message.startswith(where):
        return message
    rest = message[len(where) :]  # e.g. " (id 'c'): reason"
    rest = rest.removeprefix(f" (id {example_id!r})") if example_id is not None else re.sub(r"^ \(id [^)]*\)", "", rest)
    return rest.lstrip(": ")


def skip(error: DataError, where: str, example_id: str | None = None) -> SkippedExample:
    """Log why an example is skipped (a warning naming file, line and id) and return its stand-in."""
    reason = without_location(str(error), where, example_id)
    what = f"example {example_id!r}" if example_id is not None else "example"
    logger.warning("skipping %s at %s: %s", what, where, reason)
    return SkippedExample(example_id, where, reason, error.kind)
