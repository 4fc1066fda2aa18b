"""Checkpoint files on disk: written atomically, read as data, and damage explained.

`write_atomically` saves to a hidden temporary beside the target, fsyncs, then renames: a checkpoint is whole or
absent. `read_checkpoint` loads with `weights_only=True` (tensors and plain containers, no code). A truncated or
corrupt archive raises a `CheckpointReadError` naming the file and the newest readable one beside it. Lightning's
side of this (the `CheckpointIO` plugin) is `audio_thinker.checkpoints.atomic_io`; this module needs only torch.

Bytes changed inside a checkpoint (a bad disk, a bad copy) are caught by a checksum recorded at save time: the
CRC-32 that `torch.save`'s zip format stores for every member (the tensors included) and that `torch.load` never
reads back. `verify_checkpoint` recomputes them before a load (`damaged`: one read of the file, ~2 GB/s; a file
already verified in this process is not read again), so a damaged checkpoint is refused, naming the file and its
member, instead of loading NaN or garbage weights.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
import shutil
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
        raise CheckpointReadError(
            f"cannot read checkpoint {path}: it is truncated or corrupt ({err}); {_way_on(Path(path))}"
        ) from err


def _way_on(path: Path) -> str:
    """What to resume from instead of the unreadable `path`: the newest other readable checkpoint beside it."""
    earlier = [c for c in checkpoints_newest_first(path.parent) if c != path and unreadable(c) is None]
    if not earlier:
        return "no other readable checkpoint is in that folder"
    return (
        f"resume from the newest readable one, ckpt_path={earlier[0]}, or with ckpt_path=last, which passes over "
        "unreadable files"
    )


_verified: set[tuple[str, int, int]] = set()  # (path, size, mtime) of files whose checksums matched


def damaged(path: Path) -> str | None:
    """Why `path` is not the checkpoint that was saved (cut short, or bytes that differ from the CRC-32 recorded
    for them), or None; reads the whole file once (a file that passed in this process is not read again)."""
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key in _verified:
            return None
        with zipfile.ZipFile(path) as archive:
            member = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return str(err)
    if member is not None:
        return f"the bytes of {member} differ from the checksum (CRC-32) recorded when it was saved"
    _verified.add(key)
    return None


def verify_checkpoint(path: str | Path) -> None:
    """Raise a `CheckpointReadError` naming `path`, its damage and a way on, unless its checksums match."""
    if get_protocol(str(path)) != "file" or not Path(path).is_file() or unreadable(Path(path)):
        return  # remote, sharded, absent or cut short: loading it fails, and says so (`explained_read_errors`)
    problem = damaged(Path(path))
    if problem is not None:
        message = f"cannot read checkpoint {path}: it is truncated or corrupt ({problem}); {_way_on(Path(path))}"
        raise CheckpointReadError(message)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """`torch.load` a checkpoint as data (`weights_only=True`) once its checksums match, with
    `explained_read_errors`."""
    with explained_read_errors(path):
        verify_checkpoint(path)
        return torch.load(path, map_location="cpu", weights_only=True)


def nonfinite_weights(state: dict[str, Any]) -> list[str]:
    """The names of the floating-point tensors in `state` that hold a NaN or an infinity."""
    return [
        name
        for name, value in state.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]


def saved_step(path: Path) -> int | None:
    """The `global_step` a checkpoint recorded, read without its tensors (memory-mapped), or None."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001  (anything unreadable simply has no step to rank by)
        return None
    step = checkpoint.get("global_step") if isinstance(checkpoint, dict) else None
    return step if isinstance(step, int) else None


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
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        cause = _os_error_in(err)
        if cause is None or (cause is err and cause.errno not in NO_SPACE):
            raise
        # torch's zip writer reports a failed write as "unexpected pos ...", with the OSError only as its context:
        # raise the real cause last, where a reader looks.
        raise CheckpointWriteError(cause.errno, _write_failure(path, cause)) from err
    _fsync_dir(path.parent)


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written, with the operating system's reason (a full disk, say) named."""


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _os_error_in(err: BaseException) -> OSError | None:
    """The first OSError in `err`'s chain of causes and contexts (itself included), or None."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _write_failure(path: Path, cause: OSError) -> str:
    """What went wrong writing the checkpoint `path`, and what to do; the previous checkpoint is untouched."""
    name = errno.errorcode.get(cause.errno, "?")
    message = f"cannot write checkpoint {path}: {cause.strerror or cause} ({name})"
    if cause.errno not in NO_SPACE:
        return message + "; the previous checkpoint is kept"
    with contextlib.suppress(OSError):
        message += f", {shutil.disk_usage(path.parent).free / 2**20:.0f} MiB free there"
    return message + (
        "; the previous checkpoint is kept. Free space, keep fewer checkpoints "
        "(callbacks.model_checkpoint.save_top_k) or write them elsewhere (callbacks.model_checkpoint.dirpath)"
    )


def _fsync_dir(directory: Path) -> None:
    """Persist a rename (the directory entry) too; some filesystems do not support it, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
