"""Checkpoint files on disk: written atomically, read as data, and damage explained.

`write_atomically` saves to a hidden temporary beside the target, fsyncs, then renames: a checkpoint is whole or
absent. `read_checkpoint` loads with `weights_only=True` (tensors and plain containers, no code). A truncated or
corrupt archive raises a `CheckpointReadError` naming the file and the newest readable one beside it. Lightning's
side of this (the `CheckpointIO` plugin) is `audio_thinker.checkpoints.atomic_io`; this module needs only torch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import zipfile
from pathlib import Path
from typing import Any

import torch
from fsspec.utils import get_protocol

log = logging.getLogger(__name__)


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
