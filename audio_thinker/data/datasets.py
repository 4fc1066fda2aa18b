"""A map-style dataset over a manifest file (any registered format), loading each example's audio lazily."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path

from torch.utils.data import Dataset

from audio_thinker.data.audio import MIN_AUDIO_SECONDS, Truncation, check_truncation, load_audio
from audio_thinker.data.errors import AudioLoadError, DataFormatError, SkippedExample, check_on_error, skip
from audio_thinker.data.limits import MAX_ROW_BYTES, MAX_TEXT_CHARS, check_limit
from audio_thinker.data.manifest_formats import read_records
from audio_thinker.example import AudioQAExample

logger = logging.getLogger("audio_thinker.data")


class ManifestDataset(Dataset):
    """Examples of a JSONL / MMAU / AVQA manifest; item `i` is loaded (mono, resampled, capped) when asked for.

    `on_error="raise"` stops at the first bad record (while reading the manifest) or bad audio file (when the
    item is loaded). `on_error="skip"` logs a warning with file, line and id and goes on: bad records are kept
    in `skipped_records`; a bad audio file makes the item a `SkippedExample`, which the collate counts.
    A row over `max_row_bytes` or with a text over `max_text_chars` is such a bad record (`data.limits`).
    """

    def __init__(
        self,
        path: str | Path,
        format: str = "auto",
        audio_root: str | Path | None = None,
        max_audio_seconds: float | None = 30.0,
        target_rate: int = 16_000,
        truncation: Truncation = "head",
        on_error: str = "raise",
        max_row_bytes: int | None = MAX_ROW_BYTES,
        max_text_chars: int | None = MAX_TEXT_CHARS,
    ) -> None:
        self.path, self.on_error = Path(path), check_on_error(on_error)
        max_row_bytes = check_limit(max_row_bytes, "data.max_row_bytes")
        max_text_chars = check_limit(max_text_chars, "data.max_text_chars")
        self.max_audio_seconds, self.target_rate = max_audio_seconds, target_rate
        self.truncation = check_truncation(truncation)
        self.examples: list[AudioQAExample] = []
        self.skipped_records: list[SkippedExample] = []
        self._warned_short: set[str] = set()
        for record in read_records(self.path, format, audio_root, max_row_bytes, max_text_chars):
            if record.error is None:
                self.examples.append(record.example)
            elif self.on_error == "raise":
                raise record.error
            else:
                self.skipped_records.append(skip(record.error, str(record.where), record.record_id))
        if self.skipped_records:
            kinds = Counter(s.kind for s in self.skipped_records)
            logger.warning(
                "%s: skipped %d of %d records (%s); run `audio-thinker data check %s` for the full list",
                self.path,
                len(self.skipped_records),
                len(self.skipped_records) + len(self.examples),
                ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items())),
                self.path,
            )
        if not self.examples:
            raise DataFormatError(
                f"{self.path}: no usable examples ({len(self.skipped_records)} records skipped); run "
                f"`audio-thinker data check {self.path}` to see why.",
                kind="empty_manifest",
                path=self.path,
            )

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> AudioQAExample | SkippedExample:
        example = self.examples[index]
        try:
            wave = load_audio(example.meta["audio_path"], self.target_rate, self.max_audio_seconds, self.truncation)
        except AudioLoadError as err:
            error = AudioLoadError(f"{example.meta['source']} (id {example.id!r}): {err}", kind=err.kind, path=err.path)
            if self.on_error == "raise":
                raise error from err
            return skip(error, example.meta["source"], example.id)
        seconds = wave.shape[0] / self.target_rate
        if seconds < MIN_AUDIO_SECONDS and example.id not in self._warned_short:
            self._warned_short.add(example.id)  # once per example, not once per epoch
            logger.warning(
                "%s (id %r): the audio lasts only %.4f s (under %g s): there is next to nothing to hear; check %s",
                example.meta["source"],
                example.id,
                seconds,
                MIN_AUDIO_SECONDS,
                example.meta["audio_path"],
            )
        meta = {**example.meta, "audio_seconds": seconds}
        return replace(example, audio=wave, sampling_rate=self.target_rate, meta=meta)
