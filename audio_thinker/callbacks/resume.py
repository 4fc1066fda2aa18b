"""What an exact resume needs beyond Lightning's own state: RNG states and the checkpoint folder's care at start.

Lightning checkpoints the weights, optimizer, scheduler and loop counters; the data position is the train loader's
state (`audio_thinker.data.generations.GenerationLoader`), and a generation interrupted by a checkpoint is saved
with the module (`GRPOModule.on_save_checkpoint`). This module adds the random number generators
(`RNGStateCallback`) and the start-of-run care of the checkpoint folder (`prepare_resume`: stale temporaries
removed, an unreadable `last.ckpt` passed over). With atomic checkpoint writes
(`audio_thinker.checkpoints.atomic_io.AtomicCheckpointIO`) and step logs that survive a kill
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

from audio_thinker.callbacks.step_logs import FlushLogsCallback  # noqa: F401  (configs name it here)
from audio_thinker.checkpoints.files import (
    CheckpointReadError,
    checkpoints_newest_first,
    damaged,
    remove_stale_temporaries,
    saved_step,
    unreadable,
)

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
    """Clean the checkpoint folders and resolve `ckpt_path` for `trainer.fit`.

    Our stale temporary files are removed. `ckpt_path=last` becomes the checkpoint of the latest training step
    that is whole (`newest_whole_checkpoint`): a `last.ckpt` older than a step file written after it (a kill
    between the two writes), truncated (a copy cut short, a full disk) or damaged (bytes that fail their checksum)
    is passed over with a warning. With no checkpoint yet, training starts fresh (the same command starts and
    continues a run); with checkpoints none of which is whole, it is an error. Any other path is passed on; if it
    cannot be read, loading says which file and what to use.
    """
    folders = [Path(cb.dirpath) for cb in trainer.checkpoint_callbacks if getattr(cb, "dirpath", None)]
    for folder in folders:
        remove_stale_temporaries(folder)
    if ckpt_path != "last":
        return ckpt_path
    if not folders:
        raise FileNotFoundError(
            "ckpt_path=last: this run writes no checkpoints (callbacks.model_checkpoint=null), "
            "so there is none to resume from; pass a checkpoint file as ckpt_path"
        )
    candidates = [c for folder in folders for c in checkpoints_newest_first(folder)]
    if not candidates:
        log.info("ckpt_path=last: no checkpoint in %s yet; starting a fresh run", ", ".join(map(str, folders)))
        return None
    chosen = newest_whole_checkpoint(candidates)
    if chosen is None:
        raise CheckpointReadError(
            f"ckpt_path=last: no checkpoint in {', '.join(map(str, folders))} can be read "
            f"({', '.join(c.name for c in candidates)} are truncated or corrupt); start a fresh "
            "run (ckpt_path=null) or restore a copy"
        )
    return str(chosen)


def newest_whole_checkpoint(candidates: list[Path]) -> Path | None:
    """The checkpoint of the latest step (file time breaks a tie) whose archive is whole and whose checksums match;
    each newer one passed over is named in a warning."""
    problems = {c: unreadable(c) for c in candidates}  # cheap: the zip directory only
    whole = [c for c in candidates if problems[c] is None]
    steps = {c: saved_step(c) for c in whole}  # the pickle alone, tensors memory-mapped
    ranked = sorted(whole, key=lambda c: (-1 if steps[c] is None else steps[c], c.stat().st_mtime), reverse=True)
    for candidate in ranked:
        problems[candidate] = damaged(candidate)  # reads the file: only until one passes
        if problems[candidate] is None:
            newer = [c for c in candidates if problems[c] and c.stat().st_mtime >= candidate.stat().st_mtime]
            for skipped in newer:
                log.warning(
                    "ckpt_path=last: %s cannot be read (%s); resuming from %s, the newest readable checkpoint",
                    skipped,
                    problems[skipped],
                    candidate,
                )
            return candidate
    return None
