"""`data=hf_dataset`: a Hugging Face `datasets` dataset with an audio column, read as audio QA examples.

Where it comes from (`path`):
- a folder written by `save_to_disk` (a `Dataset`, or a `DatasetDict` whose `split` is taken);
- a Parquet, Arrow, CSV or JSON(L) file, or a folder of them (`load_dataset` picks the builder);
- an `audiofolder` layout: audio files beside a `metadata.jsonl|csv|parquet` whose `file_name` column names them,
  in the folder itself or in a `<split>/` subfolder (read here from the metadata: `datasets`' own audiofolder
  builder re-encodes every clip with torchcodec and FFmpeg, which we do not need);
- a Hub dataset id (`owner/name`, with `name=` for a configuration) when online, or cached under `HF_HUB_OFFLINE=1`.

The audio column is read with `Audio(decode=False)`, so `datasets` hands over the encoded bytes or the file path and
soundfile decodes them (`data.audio`): mono, resampled, cut to `max_audio_seconds`, with the same errors as
manifests. Columns map onto the example by config: `question_column`, `choices_column` (a list of option texts,
or a JSON list in a string; null for open questions, or for a `ClassLabel` answer whose label names become the
options), `answer_column` (the option text, its letter, or a 0-based option index), and optional `id_column`,
`task_column`, `difficulty_column`. Or `format=` a record format instead of the column mapping: `trl` (TRL's
`prompt` + `solution`), `swift` (ms-SWIFT's `messages` + `audios` + `solution`), or `auto` to tell by the columns
(`data.manifest_formats`); the audio is then the `audio_column` (default `audio`), else `audios` (the first clip).
Rows are checked when the dataset is opened, as manifest records are (`on_error`); audio is decoded when an example
is drawn.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from audio_thinker.data.audio import Truncation, check_truncation, load_audio, load_audio_bytes
from audio_thinker.data.errors import AudioLoadError, DataFormatError, Location, SkippedExample, check_on_error, skip
from audio_thinker.data.limits import MAX_TEXT_CHARS, check_limit, text_too_long
from audio_thinker.data.manifest_formats import FORMATS, _bad_field, _choices, _gold, _missing, _text, detect_format
from audio_thinker.example import AudioQAExample
from audio_thinker.format.options import is_option_letter, letter_index

logger = logging.getLogger("audio_thinker.data")

FORMAT = "hf_dataset"
FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".csv": "csv", ".json": "json", ".jsonl": "json"}
METADATA = ("metadata.jsonl", "metadata.csv", "metadata.parquet")


def import_datasets():
    """The `datasets` package, or an error saying how to install it."""
    try:
        import datasets
    except ImportError as err:
        raise ImportError(
            "data=hf_dataset reads Hugging Face datasets with the `datasets` package, which is not "
            "installed: pip install 'audio-thinker[hf]'"
        ) from err
    return datasets


def open_dataset(path: str, split: str, name: str | None = None) -> tuple[Any, Path | None, str | None]:
    """(the `datasets.Dataset` of `split`, the folder relative audio paths start from, the audio column when the
    layout fixes it) for a local dataset folder, file, audiofolder or Hub id (module docstring)."""
    datasets = import_datasets()
    local = Path(path).expanduser()
    if not local.exists() and not _hub_id(path):
        raise DataFormatError(
            f"{path}: no such dataset file or folder (and not a Hub dataset id, owner/name); check the path",
            kind="missing_manifest",
            path=path,
        )
    if local.is_dir() and any((local / marker).is_file() for marker in ("dataset_dict.json", "state.json")):
        return _split_of(datasets.load_from_disk(str(local)), split, path), local, None
    if local.is_dir() and (metadata := _audiofolder_metadata(local, split)) is not None:
        table = datasets.load_dataset(FILE_BUILDERS[metadata.suffix], data_files=str(metadata), split="train")
        return table, metadata.parent, "file_name"
    if local.is_file():
        builder = FILE_BUILDERS.get(local.suffix)
        if builder is None:
            raise DataFormatError(
                f"{path}: not a dataset file (use {', '.join(FILE_BUILDERS)}, a save_to_disk folder or an audiofolder)",
                kind="missing_manifest",
                path=path,
            )
        return datasets.load_dataset(builder, data_files={split: str(local)}, split=split), local.parent, None
    if local.is_dir():
        return _load(datasets, str(local), name, split, path), local, None
    return _load(datasets, path, name, split, path), None, None


def _hub_id(path: str) -> bool:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(path)
    except HFValidationError:
        return False
    return True


def _audiofolder_metadata(folder: Path, split: str) -> Path | None:
    """The metadata file of an audiofolder layout: `<folder>/<split>/metadata.*` or `<folder>/metadata.*`."""
    for base in (folder / split, folder):
        for name in METADATA:
            if (base / name).is_file():
                return base / name
    return None


def _split_of(loaded, split: str, path: str):
    """`loaded[split]` of a DatasetDict (a plain Dataset is its own single split)."""
    if not hasattr(loaded, "keys"):
        return loaded
    if split not in loaded:
        raise DataFormatError(_no_split(path, split, list(loaded.keys())), kind="missing_manifest", path=path)
    return loaded[split]


def _no_split(path: str, split: str, splits: list[str]) -> str:
    return (
        f"{path}: no split {split!r}; it has {splits}. Set data.train.split / data.val.split to one of them "
        "(data.val=null trains without validation)"
    )


def _load(datasets, source: str, name: str | None, split: str, path: str):
    """`load_dataset(source, name, split=split)` with its failures explained (missing split, offline, not found)."""
    from audio_thinker.models.sources import hub_offline

    try:
        return datasets.load_dataset(source, name, split=split)
    except ValueError as err:
        if "Unknown split" in str(err) or "split" in str(err).lower() and "should be one of" in str(err).lower():
            raise DataFormatError(
                f"{path}: {err}; set data.train.split / data.val.split", kind="missing_manifest", path=path
            ) from err
        raise
    except (FileNotFoundError, ConnectionError, OSError) as err:
        offline = " (HF_HUB_OFFLINE=1: only datasets already in the cache load)" if hub_offline() else ""
        raise DataFormatError(
            f"{path}: not a local dataset folder or file, and the Hub dataset could not be loaded{offline}: {err}. "
            "Check the path, or the id and the network",
            kind="missing_manifest",
            path=path,
        ) from err


class HFAudioQADataset(Dataset):
    """Examples of a `datasets` dataset (module docstring); item `i` is loaded (mono, resampled, capped) when asked.

    `on_error="raise"` stops at the first bad row (when the dataset is opened) or bad clip (when the item is
    loaded); `on_error="skip"` logs it and goes on, as `ManifestDataset` does. A row with a text over
    `max_text_chars` is such a bad row (`data.limits`).
    """

    def __init__(
        self,
        path: str,
        split: str = "train",
        name: str | None = None,
        audio_column: str = "audio",
        question_column: str = "question",
        choices_column: str | None = "choices",
        answer_column: str = "answer",
        id_column: str | None = None,
        task_column: str | None = None,
        difficulty_column: str | None = None,
        max_audio_seconds: float | None = 30.0,
        target_rate: int = 16_000,
        truncation: Truncation = "head",
        on_error: str = "raise",
        format: str = "columns",
        max_text_chars: int | None = MAX_TEXT_CHARS,
    ) -> None:
        max_text_chars = check_limit(max_text_chars, "data.max_text_chars")
        if format not in ("columns", "auto", *FORMATS):
            raise ValueError(
                f"data format {format!r}: use columns (the *_column mapping), auto or one of {sorted(FORMATS)}"
            )
        self.path, self.split, self.on_error, self.format = str(path), split, check_on_error(on_error), format
        self.max_audio_seconds, self.target_rate = max_audio_seconds, target_rate
        self.truncation = check_truncation(truncation)
        table, self.audio_base, fixed_audio = open_dataset(self.path, split, name)
        self.audio_column = fixed_audio if fixed_audio and audio_column not in table.column_names else audio_column
        if format != "columns" and self.audio_column not in table.column_names and "audios" in table.column_names:
            self.audio_column = "audios"  # ms-SWIFT's list of clips
        self.columns = {
            "question": question_column,
            "choices": choices_column,
            "answer": answer_column,
            "id": id_column,
            "task": task_column,
            "difficulty": difficulty_column,
        }
        self._check_columns(table.column_names)
        self.table = _undecoded(table, self.audio_column)
        self.examples: list[AudioQAExample] = []
        self.skipped_records: list[SkippedExample] = []
        label_names = _label_names(table, answer_column) if choices_column is None else None
        rows = self._record_rows() if format != "columns" else table.select_columns(self._text_columns())
        for index, row in enumerate(rows):
            where = Location(Path(self.path), index=index)
            try:
                if format == "columns":
                    example = self._example(row, index, where, label_names)
                else:
                    example = self._record_example(row, index, where)
                if (too_long := text_too_long(example, where, max_text_chars)) is not None:
                    raise too_long
                self.examples.append(example)
            except DataFormatError as err:
                if self.on_error == "raise":
                    raise
                self.skipped_records.append(skip(err, str(where), row.get(id_column) if id_column else None))
        if self.skipped_records:
            kinds = Counter(s.kind for s in self.skipped_records)
            logger.warning(
                "%s [%s]: skipped %d of %d rows (%s)",
                self.path,
                split,
                len(self.skipped_records),
                len(table),
                ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items())),
            )
        if not self.examples:
            raise DataFormatError(
                f"{self.path} [{split}]: no usable examples ({len(self.skipped_records)} rows skipped)",
                kind="empty_manifest",
                path=self.path,
            )

    def _check_columns(self, available: list[str]) -> None:
        """Every configured column exists; the message names the setting and the columns there are."""
        wanted = {"audio": self.audio_column, **(self.columns if self.format == "columns" else {})}
        for role, column in wanted.items():
            if column is not None and column not in available:
                raise DataFormatError(
                    f"{self.path} [{self.split}]: no column {column!r} for the {role} ({role}_column); its columns "
                    f"are {available}. Map it with data.train.{role}_column=<column> (and data.val.{role}_column)",
                    kind="missing_field",
                    path=self.path,
                )

    def _record_rows(self):
        """Whole rows for a record format, the audio cell replaced by its path (or a label when it holds bytes:
        the clip is decoded from the table when the example is drawn), so opening never reads audio bytes."""
        audio = self.audio_column
        feature, inner = _audio_feature(self.table, audio)
        listed = inner is not feature
        others = self.table.select_columns([c for c in self.table.column_names if c != audio])
        encoded = isinstance(inner, import_datasets().Audio)
        if encoded and listed:
            import pyarrow.compute as pc

            counts = pc.list_value_length(self.table.data.column(audio)).to_pylist()
        paths = None if encoded else self.table[audio]
        for index, row in enumerate(others):
            label = f"{self.split}-{index}"
            row[audio] = paths[index] if not encoded else [label] * (counts[index] or 0) if listed else label
            yield row

    def _record_example(self, row: dict, index: int, where: Location) -> AudioQAExample:
        """One row of a record format (`trl`, `swift`, ...) as an example, as the manifest reader makes it."""
        if self.format == "auto":  # the first row decides, as for a manifest
            self.format = detect_format(row, where)
        name = self.format
        example = FORMATS[name].adapter(row, where, self.audio_base or Path.cwd())
        example.meta.update(row=index, dataset=self.path, split=self.split, source_format=name)
        return example

    def _text_columns(self) -> list[str]:
        return [column for column in self.columns.values() if column is not None]

    def _example(self, row: dict, index: int, where: Location, label_names: list[str] | None) -> AudioQAExample:
        """One row (without its audio) as an example, or a `DataFormatError` naming the row and the column."""
        columns = self.columns
        example_id = _text(row, columns["id"], where, FORMAT) if columns["id"] else f"{self.split}-{index}"
        question = _text(row, columns["question"], where, FORMAT)
        choices = _row_choices(row, columns["choices"], where) if columns["choices"] else label_names
        answer = _row_answer(row, columns["answer"], choices, where, example_id)
        meta = {"source": str(where), "row": index, "dataset": self.path, "split": self.split, "source_format": FORMAT}
        return AudioQAExample(
            id=example_id,
            question=question,
            answer=answer,
            choices=choices,
            task=(_text(row, columns["task"], where, FORMAT, required=False) if columns["task"] else None) or "unknown",
            difficulty=(
                _text(row, columns["difficulty"], where, FORMAT, required=False) if columns["difficulty"] else None
            )
            or "unknown",
            meta=meta,
        )

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> AudioQAExample | SkippedExample:
        example = self.examples[index]
        try:
            cell = self.table[example.meta["row"]][self.audio_column]
            wave = self.load_audio(cell[0] if isinstance(cell, list) and cell else cell, example.meta["source"])
        except AudioLoadError as err:
            error = AudioLoadError(f"{example.meta['source']} (id {example.id!r}): {err}", kind=err.kind, path=err.path)
            if self.on_error == "raise":
                raise error from err
            return skip(error, example.meta["source"], example.id)
        meta = {**example.meta, "audio_seconds": wave.shape[0] / self.target_rate}
        return replace(example, audio=wave, sampling_rate=self.target_rate, meta=meta)

    def load_audio(self, value: Any, where: str):
        """Decode an audio cell: `{"bytes", "path"}` (bytes first) or a path, relative to the dataset's folder."""
        settings = (self.target_rate, self.max_audio_seconds, self.truncation)
        if isinstance(value, dict) and value.get("bytes"):
            return load_audio_bytes(value["bytes"], where, *settings)
        path = value.get("path") if isinstance(value, dict) else value
        if not path:
            raise AudioLoadError(
                f"no audio in column {self.audio_column!r} (neither bytes nor a path)", kind="missing_file", path=where
            )
        path = Path(path).expanduser()
        if not path.is_absolute() and self.audio_base is not None:
            path = self.audio_base / path
        return load_audio(path, *settings)


def _audio_feature(table, column: str):
    """(the column's feature, the feature of its items when it is a list of clips, else the feature itself)."""
    feature = table.features[column]
    if isinstance(feature, list):
        return feature, feature[0]
    if not isinstance(feature, import_datasets().Audio) and hasattr(feature, "feature"):
        return feature, feature.feature
    return feature, feature


def _undecoded(table, column: str):
    """The table with its Audio column (or list of clips) left encoded (`Audio(decode=False)`): soundfile decodes
    it, not torchcodec."""
    datasets = import_datasets()
    if column not in table.column_names:
        return table
    feature, inner = _audio_feature(table, column)
    if not isinstance(inner, datasets.Audio):
        return table
    if inner is feature:
        return table.cast_column(column, datasets.Audio(decode=False))
    listed = getattr(datasets, "List", datasets.Sequence)  # `List` since datasets 4, `Sequence` before
    return table.cast_column(column, listed(datasets.Audio(decode=False)))


def _label_names(table, column: str) -> list[str] | None:
    """The label names of a `ClassLabel` answer column (the options when no choices column is given)."""
    feature = table.features.get(column)
    return list(feature.names) if hasattr(feature, "names") else None


def _row_choices(row: dict, column: str, where: Location) -> list[str] | None:
    """The options: a list, or a JSON list held in a string."""
    value = row.get(column)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _bad_field(where, column, "a list of options (or a JSON list in a string)", value) from None
    return _choices({column: value}, column, where, FORMAT, required=False)


def _row_answer(row: dict, column: str, choices: list[str] | None, where: Location, example_id: str) -> str:
    """The gold option text from the answer cell: the text itself, its letter (A, B, ...) or a 0-based index."""
    value = row.get(column)
    if value is None:
        raise _missing(where, row, column, FORMAT)
    if isinstance(value, int) and not isinstance(value, bool) and choices:
        if not 0 <= value < len(choices):
            raise _bad_field(where, column, f"an option index in 0..{len(choices) - 1} ({choices})", value)
        return choices[value]
    answer = _text(row, column, where, FORMAT)
    letter = letter_index(answer) if is_option_letter(answer) else -1
    folded = [choice.casefold() for choice in choices or []]
    if choices and 0 <= letter < len(choices) and answer.casefold() not in folded:
        return choices[letter]
    return _gold(answer, choices, where, example_id)
