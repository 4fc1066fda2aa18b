"""A checkpoint-IO plugin that test configs name by `_target_`: a run killed right after a checkpoint lands."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from audio_thinker.checkpoints.atomic_io import AtomicCheckpointIO


class KillAfterCheckpoint(AtomicCheckpointIO):
    """Writes checkpoints as usual, then SIGKILLs its own process as soon as `last.ckpt` of `step` is on disk."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        super().save_checkpoint(checkpoint, path, storage_options)
        if Path(path).name == "last.ckpt" and checkpoint["global_step"] == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
