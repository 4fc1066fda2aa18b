"""The LightningDataModule that feeds batches of examples to the rollout callback.

Batch contract: `{"examples": list[AudioQAExample], "skips": list[SkippedExample]}`. `examples` may be empty when
every item of the batch was skipped; `skips` are the stand-ins of the items that could not be loaded under
`on_error="skip"` (each one was logged with its file, line and id when it was skipped). A `SkipLedger`
(`AudioQADataModule.skip_ledger`) counts them across the run and stops it when too much is skipped.
Training batches hold a whole generation's examples and are served as its micro-steps (`GenerationLoader`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from functools import partial
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from audio_thinker.data.audio import cap_audio
from audio_thinker.data.controls import AudioControl, check_audio_control
from audio_thinker.data.errors import DataError, SkippedExample, check_on_error, skip
from audio_thinker.data.generations import GenerationLoader, GenerationPlan
from audio_thinker.data.limits import MAX_ROW_BYTES, MAX_TEXT_CHARS, check_limit
from audio_thinker.data.skips import MAX_EMPTY_STEPS, MAX_SKIP_FRACTION, SkipLedger
from audio_thinker.example import AudioQAExample


def collate_examples(items: list[AudioQAExample | SkippedExample], max_audio_seconds: float | None = None) -> dict:
    """A batch is a dict with the list of examples (audio stays numpy: the processor featurises it)."""
    skipped = [item for item in items if isinstance(item, SkippedExample)]
    examples = [item for item in items if not isinstance(item, SkippedExample)]
    if max_audio_seconds is not None:
        examples = [cap_audio(example, max_audio_seconds) for example in examples]
    return {"examples": examples, "skips": skipped}


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


def innermost_dataset(dataset: Dataset | None) -> Dataset | None:
    """The dataset under the error policy's and the audio control's wrappers."""
    while isinstance(dataset, SkipOnError | AudioControl):
        dataset = dataset.dataset
    return dataset


class ResumableSampler(DistributedSampler):
    """A seeded shuffle per (seed, epoch), sharded by rank, that starts at the first batch not yet trained on.

    `consumed` counts the batches of the current epoch that the training loop has *taken* (the datamodule's
    `on_before_batch_transfer` advances it), never the ones a loader or its workers merely prefetched, so the
    position saved in a checkpoint is exact. It subclasses `DistributedSampler` so that Lightning keeps it under
    DDP instead of wrapping it in its own. `len()` stays the whole epoch's: Lightning counts a resumed epoch's
    batches from the restored position.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.batch_size = batch_size
        self.consumed = 0

    @property
    def batches_per_epoch(self) -> int:
        """Batches this rank draws in one epoch (the last may be short)."""
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:  # Lightning calls this every epoch, also right after a restore: same epoch, no reset
            self.epoch, self.consumed = epoch, 0

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.consumed * self.batch_size, None)

    def state_dict(self) -> dict[str, int]:
        """The epoch and the batches of it already trained on."""
        return {"epoch": self.epoch, "consumed": self.consumed}

    def load_state_dict(self, state: dict[str, int], advance_finished_epoch: bool = True) -> None:
        """Continue where `state` stopped; a checkpoint taken after an epoch's last batch starts the next epoch."""
        self.epoch, self.consumed = int(state["epoch"]), int(state["consumed"])
        if advance_finished_epoch and self.consumed >= self.batches_per_epoch:
            self.epoch, self.consumed = self.epoch + 1, 0


class AudioQADataModule(L.LightningDataModule):
    """Train/val datasets (instantiated by Hydra) with seeded shuffling.

    `batch_size` is the number of *prompts* per micro-batch; each is sampled `rollout.group_size` times. Training
    draws a generation's prompts at once (`batch_size` x the micro-batches of the `GenerationPlan` that the
    rollout callback sets) and serves them as that generation's micro-steps.
    `on_error="skip"` turns data errors raised by an item into counted, logged skips (see the module docstring);
    `"raise"` lets them stop the run; `max_skip_fraction` and `max_empty_steps` say when skipping must stop it
    (see `audio_thinker.data.skips`). `max_audio_seconds` caps every example's audio (any dataset) as batches
    are collated; manifest configs also pass it to `ManifestDataset`, which cuts before resampling.
    `audio_control` (`silence` | `shuffle`, a debugging switch) replaces every example's audio, training and
    validation alike, by silence or by another example's clip (`audio_thinker.data.controls`): a model that still
    beats chance is answering from the text.
    Training order is a `ResumableSampler`: a checkpoint records how far into the epoch training got, and a resumed
    run continues with the next batch of the same order.
    `max_row_bytes` and `max_text_chars` are the datasets' size limits per row (`data.limits`): the data configs
    hand them to both splits' datasets, which apply them; here they are only checked.
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
        max_skip_fraction: float = MAX_SKIP_FRACTION,
        max_empty_steps: int = MAX_EMPTY_STEPS,
        audio_control: str | None = None,
        max_row_bytes: int | None = MAX_ROW_BYTES,
        max_text_chars: int | None = MAX_TEXT_CHARS,
    ) -> None:
        super().__init__()
        check_limit(max_row_bytes, "data.max_row_bytes")
        check_limit(max_text_chars, "data.max_text_chars")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"data.batch_size must be an integer >= 1 (prompts per micro-batch), got {batch_size!r}")
        self.on_error = check_on_error(on_error)
        self.max_skip_fraction, self.max_empty_steps = max_skip_fraction, max_empty_steps
        self.collate = partial(collate_examples, max_audio_seconds=max_audio_seconds)
        self.audio_control = check_audio_control(audio_control)
        self.train_set, self.val_set = self._guard(train, seed), self._guard(val, seed)
        self.batch_size, self.val_batch_size = batch_size, val_batch_size or batch_size
        self.num_workers, self.seed = num_workers, seed
        self._train_sampler: ResumableSampler | None = None
        self._train_loader: GenerationLoader | None = None
        self.generation_plan = GenerationPlan()
        self.skip_ledger().check()  # a manifest mostly dropped at read time stops here, before any model loads

    def set_generation_plan(self, plan: GenerationPlan) -> None:
        """How the training loader groups micro-batches into generations (set by the rollout callback's setup)."""
        self.generation_plan = plan

    def skip_ledger(self) -> SkipLedger:
        """A fresh ledger with this module's limits and the training records dropped when the manifest was read."""
        dataset = innermost_dataset(self.train_set)
        dropped = list(getattr(dataset, "skipped_records", []))
        records = len(dropped) + len(dataset) if hasattr(dataset, "skipped_records") else 0
        ledger = SkipLedger(self.max_skip_fraction, self.max_empty_steps, records=records)
        ledger.record_load(dropped)
        return ledger

    def _guard(self, dataset: Dataset | None, seed: int) -> Dataset | None:
        """Apply the audio control (if any), then the error policy, to `dataset`."""
        if dataset is not None and self.audio_control is not None:
            dataset = AudioControl(dataset, self.audio_control, seed)
        return SkipOnError(dataset) if dataset is not None and self.on_error == "skip" else dataset

    def train_dataloader(self) -> GenerationLoader:
        trainer = self.trainer  # None outside a Trainer (tests, tools): one process
        generation_size = self.batch_size * self.generation_plan.micro_batches
        previous, self._train_sampler = (
            self._train_sampler,
            ResumableSampler(
                self.train_set,
                generation_size,
                self.seed,
                num_replicas=trainer.world_size if trainer else 1,
                rank=trainer.global_rank if trainer else 0,
            ),
        )
        if previous is not None:  # a reloaded loader keeps the position
            self._train_sampler.load_state_dict(previous.state_dict())
        loader = DataLoader(
            self.train_set,
            batch_size=generation_size,
            sampler=self._train_sampler,
            # Only seeds the workers: fixed per loader, and persistent workers keep theirs, as in a resumed run.
            generator=torch.Generator().manual_seed(self.seed),
            num_workers=self.num_workers,
            collate_fn=self.collate,
            persistent_workers=self.num_workers > 0,
        )
        self._train_loader = GenerationLoader(loader, self.generation_plan)
        return self._train_loader

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Called once per batch the training loop takes (not when it is prefetched): the consumed position.
        if self._train_loader is not None and self.trainer is not None and self.trainer.training:
            self._train_loader.taken(batch)
        return batch

    def val_dataloader(self) -> DataLoader:
        if self.val_set is None:
            return []
        return DataLoader(
            self.val_set,
            batch_size=self.val_batch_size,
            num_workers=self.num_workers,
            collate_fn=self.collate,
            # Its own generator: starting the loader then draws no seed from the global stream, so validating
            # leaves the training run's random numbers (sampling, shuffling) exactly as without it.
            generator=torch.Generator().manual_seed(self.seed),
        )
