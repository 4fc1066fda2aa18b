"""`ckpt_path=<run>/checkpoints/checkpoint-<step>`: the Hugging Face folders we write, accepted where a checkpoint is.

A `checkpoint-<step>/` folder (`callbacks.hf_checkpoint`) holds the step's policy as `save_pretrained` writes it; the
Lightning checkpoint of the same step beside it holds what resuming also needs (optimizer, counters, RNG states).
So resuming and `export` take that `.ckpt` (`lightning_checkpoint`), and `eval` takes it too, or, when it was not
kept, the folder's own weights: its LoRA adapter on the run's base model, or the whole model (`eval_weights`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from audio_thinker.checkpoints.files import saved_step

FOLDER = re.compile(r"^checkpoint-(\d+)$")


class CheckpointPathError(FileNotFoundError):
    """A checkpoint path that names no usable checkpoint; the message says what to pass instead."""


def folder_step(path: str | Path) -> int | None:
    """N for a `checkpoint-N` folder, else None."""
    path = Path(path)
    match = FOLDER.match(path.name)
    return int(match.group(1)) if match and path.is_dir() else None


def step_checkpoint(folder: Path, step: int) -> Path | None:
    """The Lightning checkpoint of `step` beside a `checkpoint-<step>` folder: `step<NNNNNN>.ckpt`, else any
    `.ckpt` there that recorded that step (`last.ckpt`, a preemption checkpoint)."""
    named = folder.parent / f"step{step:06d}.ckpt"
    if named.is_file():
        return named
    return next((c for c in sorted(folder.parent.glob("*.ckpt")) if saved_step(c) == step), None)


def lightning_checkpoint(path: str | None, key: str = "ckpt_path") -> str | None:
    """`path` as `trainer.fit` and `export` take it: a `checkpoint-<step>` folder becomes its step's `.ckpt`;
    "last", a file or None are returned as they are; another folder is an error saying what to pass."""
    if path is None or path == "last" or not Path(path).is_dir():
        return path
    step = folder_step(path)
    if step is None:
        raise CheckpointPathError(
            f"{key}={path}: a folder, not a checkpoint; pass a checkpoint file (<run>/checkpoints/last.ckpt), a "
            "checkpoint-<step> folder, or last"
        )
    found = step_checkpoint(Path(path), step)
    if found is None:
        kept = sorted(p.name for p in Path(path).parent.glob("*.ckpt")) or ["none"]
        raise CheckpointPathError(
            f"{key}={path}: the Lightning checkpoint of step {step} (weights, optimizer and counters: what resuming "
            f"and export read) is not beside the folder; {Path(path).parent} has {', '.join(kept)}. Pass one of "
            f"those, or use the folder's weights as they are: eval.ckpt_path={path}, or a new run from them"
        )
    return str(found)


@dataclass(frozen=True)
class EvalWeights:
    """What `eval.ckpt_path` loads: a Lightning checkpoint, or a `checkpoint-<step>` folder's adapter or model."""

    ckpt_path: str | None = None  # a Lightning checkpoint (its `policy.*` weights)
    adapter: str | None = None  # a PEFT adapter folder, on the run's base model
    model_path: str | None = None  # a whole model folder, in place of the run's model.path


def eval_weights(path: str | None) -> EvalWeights:
    """`eval.ckpt_path` resolved: a file as is; a `checkpoint-<step>` folder as its step's `.ckpt` when one is
    kept, else as its own weights (an adapter when it has adapter_config.json, else a whole model)."""
    if path is None or not Path(path).is_dir():
        return EvalWeights(ckpt_path=path)
    step = folder_step(path)
    if step is None:
        lightning_checkpoint(path, "eval.ckpt_path")  # raises: what to pass instead
    found = step_checkpoint(Path(path), step)
    if found is not None:
        return EvalWeights(ckpt_path=str(found))
    if (Path(path) / "adapter_config.json").is_file():
        return EvalWeights(adapter=str(path))
    return EvalWeights(model_path=str(path))
