"""What an exact resume needs beyond Lightning's own state: RNG states, rollout-aligned and atomic checkpoints.

Lightning checkpoints the weights, optimizer, scheduler and loop counters; the data position is the train loader's
state (`audio_thinker.data.generations.GenerationLoader`), and a generation interrupted by a checkpoint is saved
with the module (`GRPOModule.on_save_checkpoint`). This module adds the random number generators
(`RNGStateCallback`), a `CheckpointIO` whose writes are atomic (`AtomicCheckpointIO`), the start-of-run care of the
checkpoint folder (`prepare_resume`: stale temporaries removed, an unreadable `last.ckpt` passed over) and step
logs that survive a kill (`audio_thinker.callbacks.step_logs.FlushLogsCallback`), so a run killed at any moment
resumes from the newest complete checkpoint and continues, in its numbers and its TensorBoard curves, as if it had
never stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import secrets
import zipfile
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from fsspec.utils import get_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO

from audio_thinker.callbacks.step_logs import FlushLogsCallback  # noqa: F401  (configs name it here)

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


# -- atomic checkpoint files ------------------------------------------------------------------------------------
class AtomicCheckpointIO(TorchCheckpointIO):
    """`torch.save` to a temporary file beside the target, fsync, then `os.replace`: a checkpoint is whole or absent.

    A crash mid-write leaves at most a hidden `.<name>.<random>.tmp`, which no `*.ckpt` lookup (`ckpt_path=last`
    included) matches. Loading defaults to `weights_only=True`: checkpoints hold only tensors and plain containers.
    Remote paths (s3://, ...) keep Lightning's fsspec transaction.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or get_protocol(str(path)) != "file":
            return super().save_checkpoint(checkpoint, path, storage_options)
        write_atomically(checkpoint, Path(path))

    def load_checkpoint(
        self, path: Any, map_location: Any = lambda storage, loc: storage, weights_only: bool | None = None
    ) -> dict[str, Any]:
        with explained_read_errors(path):
            return super().load_checkpoint(path, map_location, True if weights_only is None else weights_only)


class CheckpointReadError(RuntimeError):
    """A checkpoint file that cannot be read (truncated or corrupt); the message names it and what to use."""


# torch's errors for a cut or damaged archive ("PytorchStreamReader failed reading zip archive", ...).
_DAMAGED = (RuntimeError, EOFError, zipfile.BadZipFile)


@contextlib.contextmanager
def explained_read_errors(path: Any):
    """Re-raise a damaged-archive error from loading `path` as a `CheckpointReadError` naming it and a way on."""
    try:
        yield
    except _DAMAGED as err:
        local = not isinstance(err, CheckpointReadError) and get_protocol(str(path)) == "file"
        damaged = local and (isinstance(err, EOFError) or "PytorchStreamReader" in str(err) or unreadable(Path(path)))
        if not damaged:  # another problem (a device mismatch, say): torch's own message says it best
            raise
        earlier = [c for c in checkpoints_newest_first(Path(path).parent) if c != Path(path) and unreadable(c) is None]
        hint = (
            f"resume from the newest readable one, ckpt_path={earlier[0]}, or with ckpt_path=last, which "
            "passes over unreadable files"
            if earlier
            else "no other readable checkpoint is in that folder"
        )
        raise CheckpointReadError(f"cannot read checkpoint {path}: it is truncated or corrupt ({err}); {hint}") from err


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """`torch.load` a checkpoint as data (`weights_only=True`), with `explained_read_errors`."""
    with explained_read_errors(path):
        return torch.load(path, map_location="cpu", weights_only=True)


# -- the checkpoint folder at start ------------------------------------------------------------------------------
TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")  # `write_atomically`'s temporary names, and nothing else


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete what killed checkpoint writes left in `directory` (only files named as `write_atomically` names them)."""
    removed = []
    for path in directory.glob(".*.tmp") if directory.is_dir() else ():
        if TEMPORARY.match(path.name):
            with contextlib.suppress(FileNotFoundError):  # another rank got there first
                path.unlink()
                removed.append(path)
    if removed:
        log.warning(
            "removed %d temporary file(s) left by an interrupted checkpoint write in %s", len(removed), directory
        )
    return removed


def checkpoints_newest_first(directory: Path) -> list[Path]:
    """`last.ckpt` first, then the other checkpoints of `directory`, newest first."""
    others = sorted((p for p in directory.glob("*.ckpt") if p.name != "last.ckpt"), key=lambda p: p.stat().st_mtime)
    last = [directory / "last.ckpt"] if (directory / "last.ckpt").is_file() else []
    return last + others[::-1]


def unreadable(path: Path) -> str | None:
    """Why `path` is not a complete checkpoint archive, or None; cheap (reads the zip directory, not the tensors)."""
    try:
        with zipfile.ZipFile(path) as archive:
            archive.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        return str(err)
    return None


def prepare_resume(trainer: L.Trainer, ckpt_path: str | None) -> str | None:
    """Clean the checkpoint folders and resolve `ckpt_path` for `trainer.fit`.

    Our stale temporary files are removed. `ckpt_path=last` becomes the newest checkpoint that is a complete
    archive: when `last.ckpt` is truncated (a copy cut short, a full disk), a warning names it and the previous
    checkpoint is used; with no checkpoint at all it is an error, not a fresh start. Any other path is passed on;
    if it cannot be read, loading says which file and what to use.
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
    for candidate in candidates:
        problem = unreadable(candidate)
        if problem is None:
            if candidate != candidates[0]:
                log.warning(
                    "ckpt_path=last: %s cannot be read (%s); resuming from %s, the newest readable checkpoint",
                    candidates[0],
                    unreadable(candidates[0]),
                    candidate,
                )
            return str(candidate)
    if candidates:
        raise CheckpointReadError(
            f"ckpt_path=last: no checkpoint in {', '.join(map(str, folders))} can be read "
            f"({', '.join(c.name for c in candidates)} are truncated or corrupt); start a fresh "
            "run (ckpt_path=null) or restore a copy"
        )
    # Lightning would warn and start from scratch: a resume that silently trains a new model instead.
    raise FileNotFoundError(
        f"ckpt_path=last: no checkpoint in {', '.join(map(str, folders))}; resume in the run's own directory "
        "(hydra.run.dir=<the run>), pass a checkpoint file as ckpt_path, or start a fresh run with ckpt_path=null"
    )


def write_atomically(obj: Any, path: Path) -> None:
    """`torch.save(obj)` so that `path` is either its old content or the complete new file, even after a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"  # same directory, so the rename is atomic
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for a plain open()
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Persist a rename (the directory entry) too; some filesystems do not support it, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
