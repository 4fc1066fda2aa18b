"""The LightningDataModule that feeds batches of examples to the rollout callback.

Batch contract: `{"examples": list[AudioQAExample], "skipped": int, "skipped_ids": list[str | None]}`.
`examples` may be empty when every item of the batch was skipped; `skipped` counts the items that could not
be loaded under `on_error="skip"` (each one was logged with its file, line and id when it was skipped).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from audio_thinker.data.errors import DataError, SkippedExample, check_on_error, skip
from audio_thinker.data.example import AudioQAExample


def cap_audio(example: AudioQAExample, max_seconds: float) -> AudioQAExample:
    """`example` with its audio cut to the first `max_seconds` (the "head" policy of `data.audio`)."""
    limit = int(round(max_seconds * example.sampling_rate))
    if example.audio is None or example.audio.shape[0] <= limit:
        return example
    return replace(example, audio=example.audio[:limit], meta={**example.meta, "truncated": True})


def collate_examples(items: list[AudioQAExample | SkippedExample], max_audio_seconds: float | None = None) -> dict:
    """A batch is a dict with the list of examples (audio stays numpy: the processor featurises it)."""
    skipped = [item for item in items if isinstance(item, SkippedExample)]
    examples = [item for item in items if not isinstance(item, SkippedExample)]
    if max_audio_seconds is not None:
        examples = [cap_audio(example, max_audio_seconds) for example in examples]
    return {"examples": examples, "skipped": len(skipped), "skipped_ids": [s.id for s in skipped]}


class SkipOnError(Dataset):
    """Wraps any dataset so a `DataError` on an item becomes a logged, counted `SkippedExample`."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> AudioQAExample | SkippedExample:
        try:
            return self.dataset[index]
        except DataError as err:  # only data problems; a bug in our code must still fail loudly
            return skip(err, f"{type(self.dataset).__name__}[{index}]")


class AudioQADataModule(L.LightningDataModule):
    """Train/val datasets (instantiated by Hydra) with seeded shuffling.

    `batch_size` is the number of *prompts* per step; each is sampled `rollout.group_size` times.
    `on_error="skip"` turns data errors raised by an item into counted, logged skips (see the module docstring);
    `"raise"` lets them stop the run. `max_audio_seconds` caps every example's audio (any dataset) as batches
    are collated; manifest configs also pass it to `ManifestDataset`, which cuts before resampling.
    """

    def __init__(
        self,
        train: Dataset,
        val: Dataset | None = None,
        batch_size: int = 2,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        on_error: str = "raise",
        max_audio_seconds: float | None = None,
    ) -> None:
        super().__init__()
        self.on_error = check_on_error(on_error)
        self.collate = partial(collate_examples, max_audio_seconds=max_audio_seconds)
        self.train_set, self.val_set = self._guard(train), self._guard(val)
        self.batch_size, self.val_batch_size = batch_size, val_batch_size or batch_size
        self.num_workers, self.seed = num_workers, seed

    def _guard(self, dataset: Dataset | None) -> Dataset | None:
        """Apply the error policy to `dataset`."""
        return SkipOnError(dataset) if dataset is not None and self.on_error == "skip" else dataset

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(self.seed),
            num_workers=self.num_workers,
            collate_fn=self.collate,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        if self.val_set is None:
            return []
        return DataLoader(
            self.val_set, batch_size=self.val_batch_size, num_workers=self.num_workers, collate_fn=self.collate
        )
