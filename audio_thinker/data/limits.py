"""Size limits per manifest row, so that one huge row cannot take unbounded memory.

- `max_row_bytes` (`data.max_row_bytes`, default 1 MiB): a JSONL line longer than this is refused (kind
  `row_too_long`, naming file:line) before it is parsed: the file is read line by line and such a line is passed
  over in small reads, never held whole. An item of a JSON-list file (a JSON list is read whole) is measured
  once decoded and refused the same way.
- `max_text_chars` (`data.max_text_chars`, default 64 KiB characters): the question, the answer, each option
  and the system turn of an example; a longer one is refused (kind `text_too_long`), naming which one.

Both follow `data.on_error` as every bad row does: `raise` stops at the first, `skip` leaves it out and counts it.
`null` switches a limit off. Whether a prompt fits the model's context is `prompt_length`'s check, made on
characters before any text is tokenised.
"""

from __future__ import annotations

from collections.abc import Iterator

from audio_thinker.data.errors import DataFormatError, Location
from audio_thinker.example import AudioQAExample

MAX_ROW_BYTES = 1 << 20  # 1 MiB: a question of 64 KiB with its options and metadata fits many times over
MAX_TEXT_CHARS = 1 << 16  # 64 KiB characters: ~16k tokens, more than most models' whole context


def check_limit(value: int | None, key: str) -> int | None:
    """A limit: an integer >= 1, or None for no limit."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{key} must be an integer >= 1, or null for no limit; got {value!r}")
    return value


def row_too_long(where: Location, size: int, limit: int) -> DataFormatError:
    """The error for a row of `size` bytes over `max_row_bytes`."""
    return DataFormatError(
        f"{where}: the row is {size:,} bytes, more than data.max_row_bytes={limit:,}; it was not read. Shorten it "
        "or remove it (or raise data.max_row_bytes if rows this long are meant).",
        kind="row_too_long",
        path=where.file,
    )


def prompt_texts(example: AudioQAExample) -> Iterator[tuple[str, str]]:
    """(name, text) of each of the example's own texts that its prompt shows."""
    yield "the question", example.question
    for number, choice in enumerate(example.choices or (), start=1):
        yield f"option {number}", choice
    system = example.meta.get("prompt_system")
    if isinstance(system, str):
        yield "the system turn", system


def text_too_long(example: AudioQAExample, where: Location | str, limit: int | None) -> DataFormatError | None:
    """The error for the first text of `example` (its prompt's, then its answer) over `limit` characters, or None."""
    if limit is None:
        return None
    for name, text in [*prompt_texts(example), ("the answer", example.answer)]:
        if len(text) > limit:
            return DataFormatError(
                f"{where} (id {example.id!r}): {name} is {len(text):,} characters, more than data.max_text_chars="
                f"{limit:,}. Shorten it or remove the row (or raise data.max_text_chars if texts this long are "
                "meant).",
                kind="text_too_long",
                path=where.file if isinstance(where, Location) else None,
            )
    return None
