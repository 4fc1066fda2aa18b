"""Audio controls: the same questions with uninformative audio, to check that a model's gain is listening.

A model that scores above chance with its audio replaced by silence (`silence`) or by another example's clip
(`shuffle`) answers from the text: the options, their order, a prior over answers. `data.audio_control` switches
a control on for training, validation and `audio-thinker eval` alike.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from torch.utils.data import Dataset

from audio_thinker.example import AudioQAExample

AUDIO_CONTROLS = ("silence", "shuffle")


def check_audio_control(mode: str | None) -> str | None:
    """`mode` if it names a control (or is None: off)."""
    if mode is not None and mode not in AUDIO_CONTROLS:
        raise ValueError(f"data.audio_control must be null, silence or shuffle; got {mode!r}")
    return mode


def donors(size: int, seed: int) -> np.ndarray:
    """Which example lends its clip to each example under `shuffle`: a seeded single cycle, so none keeps its own."""
    order = np.random.default_rng([seed, size]).permutation(size)
    donor = np.empty(size, dtype=np.int64)
    donor[order] = np.roll(order, -1)  # each example in the cycle takes the next one's clip
    return donor


class AudioControl(Dataset):
    """`dataset` with each example's audio replaced: by silence as long as the clip (`silence`), or by the clip of
    another example of the same dataset (`shuffle`, a fixed derangement drawn from `seed`). Questions, options and
    answers are untouched; `meta["audio_control"]` records the control (and `meta["audio_from"]` the donor's id).
    """

    def __init__(self, dataset: Dataset, mode: str, seed: int = 0) -> None:
        if check_audio_control(mode) is None:
            raise ValueError("AudioControl needs a control: silence or shuffle")
        if mode == "shuffle" and len(dataset) < 2:
            raise ValueError(f"data.audio_control=shuffle needs at least two examples, the dataset has {len(dataset)}")
        self.dataset, self.mode, self.seed = dataset, mode, seed
        self._donors = np.empty(0, dtype=np.int64)

    def donor_of(self, index: int) -> int:
        """The example whose clip `index` gets (drawn for the current size: records dropped at load shrink it)."""
        if len(self._donors) != len(self.dataset):
            self._donors = donors(len(self.dataset), self.seed)
        return int(self._donors[index])

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):
        # Everything else (a manifest's `skipped_records`, say) is the wrapped dataset's.
        if name in ("dataset", "_donors"):  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int):
        example = self.dataset[index]
        if not isinstance(example, AudioQAExample) or example.audio is None:
            return example  # a skipped item stays skipped; a text-only example has nothing to replace
        donor = self.dataset[self.donor_of(index)] if self.mode == "shuffle" else None
        if donor is None or donor.audio is None:  # silence (or a donor without audio: silence too)
            silent = np.zeros_like(example.audio)
            return replace(example, audio=silent, meta={**example.meta, "audio_control": "silence"})
        return replace(
            example,
            audio=donor.audio,
            sampling_rate=donor.sampling_rate,
            meta={**example.meta, "audio_control": "shuffle", "audio_from": donor.id},
        )
