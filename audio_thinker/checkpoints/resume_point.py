"""Which checkpoint a run resumes from: `ckpt_path=last` made the newest whole checkpoint of the run's folders.

Training (`audio_thinker.callbacks.resume.prepare_resume`) and the config check that runs before the model loads
(`audio_thinker.config_checks.check_resume`) ask the same function, over the same folders.
"""

from __future__ import annotations

import logging
from pathlib import Path

from audio_thinker.checkpoints.files import (
    CheckpointReadError,
    checkpoints_newest_first,
    damaged,
    remove_stale_temporaries,
    saved_step,
    unreadable,
)

log = logging.getLogger(__name__)


def resume_point(folders: list[Path], ckpt_path: str | None) -> str | None:
    """Clean the checkpoint `folders` (a run's checkpoint callbacks' `dirpath`s) and resolve `ckpt_path` for
    `trainer.fit`.

    Our stale temporary files are removed. `ckpt_path=last` becomes the checkpoint of the latest training step
    that is whole (`newest_whole_checkpoint`): a `last.ckpt` older than a step file written after it (a kill
    between the two writes), truncated (a copy cut short, a full disk) or damaged (bytes that fail their checksum)
    is passed over with a warning. With no checkpoint yet, training starts fresh (the same command starts and
    continues a run); with checkpoints none of which is whole, it is an error. Any other path is passed on; if it
    cannot be read, loading says which file and what to use.
    """
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
