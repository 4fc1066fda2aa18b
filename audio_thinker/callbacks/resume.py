"""What an exact resume needs beyond Lightning's own state: RNG states and the checkpoint folder's care at start.

Lightning checkpoints the weights, optimizer, scheduler and loop counters; the data position is the train loader's
state (`audio_thinker.data.generations.GenerationLoader`), and a generation interrupted by a checkpoint is saved
with the module (`GRPOModule.on_save_checkpoint`). This module adds the random number generators
(`RNGStateCallback`) and the start-of-run care of the checkpoint folder (`prepare_resume`: stale temporaries
removed, an unreadable `last.ckpt` passed over; `audio_thinker.checkpoints.resume_point`). With atomic checkpoint
writes (`audio_thinker.checkpoints.atomic_io.AtomicCheckpointIO`) and step logs that survive a kill
(`audio_thinker.callbacks.step_logs.FlushLogsCallback`), a run killed at any moment resumes from the newest
complete checkpoint and continues, in its numbers and its TensorBoard curves, as if it had never stopped.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist

from audio_thinker.checkpoints.resume_point import resume_point

log = logging.getLogger(__name__)


# -- RNG states ------------------------------------------------------------------------------------------------
def capture_rng_state() -> dict[str, Any]:
    """This process's torch (CPU, CUDA), numpy and Python RNG states as tensors/lists, safe for weights_only loads.

    CUDA: the current device only (one per rank); reading every device would open a context on each from each rank.
    """
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),  # uint32 has no weights_only form
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": {"version": version, "state": list(internal), "gauss": gauss},
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Set the generators `capture_rng_state` read (CUDA's where it was saved from, and is here, in use)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))


class RNGStateCallback(L.Callback):
    """Saves every rank's RNG states in each checkpoint and restores them when training resumes.

    The states are restored at `on_train_start`, after Lightning's setup and before the first rollout, so nothing
    the resumed run does while it rebuilds the model and the loaders can shift the random streams.
    """

    def __init__(self) -> None:
        self._to_restore: dict[str, Any] | None = None
        self._rank = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._rank = trainer.global_rank

    def state_dict(self) -> dict[str, Any]:
        state = capture_rng_state()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # Called on every rank while the checkpoint is assembled (only rank 0 writes it): keep them all.
            ranks: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(ranks, state)
            return {"ranks": ranks}
        return {"ranks": [state]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._to_restore = state_dict

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._to_restore is None:
            return
        ranks = self._to_restore["ranks"]
        if self._rank >= len(ranks):
            log.warning("the checkpoint holds RNG states for %d rank(s); rank %d uses rank 0's", len(ranks), self._rank)
        restore_rng_state(ranks[self._rank] if self._rank < len(ranks) else ranks[0])
        self._to_restore = None


# -- the checkpoint folder at start ------------------------------------------------------------------------------
def prepare_resume(trainer: L.Trainer, ckpt_path: str | None) -> str | None:
    """`ckpt_path` for `trainer.fit`, resolved over the folders of the trainer's checkpoint callbacks
    (`audio_thinker.checkpoints.resume_point.resume_point`: stale temporaries removed, `last` made a whole file)."""
    folders = [Path(cb.dirpath) for cb in trainer.checkpoint_callbacks if getattr(cb, "dirpath", None)]
    return resume_point(folders, ckpt_path)
