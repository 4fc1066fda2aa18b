"""Checkpoints a Hugging Face user can open: `checkpoint-<step>/` beside every Lightning checkpoint.

A Lightning `.ckpt` holds what resuming needs (trainable weights, optimizer, counters) and opens only in
audio-thinker. With each one, `HFCheckpointCallback` also writes the step's policy as `save_pretrained` does (the
LoRA adapter, or the whole model without LoRA), its processor and a model card, as TRL and the transformers
`Trainer` name them: `PeftModel.from_pretrained(base, "<run>/checkpoints/checkpoint-40")` or
`audio-thinker eval eval.adapter=...` work on it directly. Each folder is written under a temporary name and
renamed into place, so a kill mid-write never leaves a half folder under the real name.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L

from audio_thinker.models.hf_export import export_policy, load_run_config

if TYPE_CHECKING:  # the module imports the layers below it, never the reverse at run time
    from audio_thinker.module import GRPOModule

log = logging.getLogger(__name__)

FOLDER = re.compile(r"^checkpoint-(\d+)$")
_TEMPORARY = ".checkpoint-*.tmp-*"


class HFCheckpointCallback(L.Callback):
    """With every Lightning checkpoint, write `<dirpath>/checkpoint-<step>/` (adapter or model, processor, card).

    Args:
        dirpath: the folder of the `checkpoint-<step>` folders (the Lightning checkpoints' own, by default).
        run_config: the run's `.hydra/config.yaml`, read for the model card (optional).
        save_total_limit: keep the newest K folders (None: all), as `transformers.TrainingArguments` names it.
    """

    def __init__(self, dirpath: str, run_config: str | None = None, save_total_limit: int | None = None) -> None:
        if save_total_limit is not None and save_total_limit < 1:
            raise ValueError(f"hf_checkpoint.save_total_limit must be >= 1 or null (keep all), got {save_total_limit}")
        self.dirpath, self.run_config, self.save_total_limit = Path(dirpath), run_config, save_total_limit
        self._last_step: int | None = None
        self._warned = False

    def setup(self, trainer: L.Trainer, pl_module: GRPOModule, stage: str) -> None:
        if trainer.is_global_zero and self.dirpath.is_dir():  # what a killed write left behind
            for stale in self.dirpath.glob(_TEMPORARY):
                shutil.rmtree(stale, ignore_errors=True)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: GRPOModule, checkpoint: dict) -> None:
        step = trainer.global_step
        if step == self._last_step:  # `last.ckpt` and `step….ckpt` of the same step: one folder
            return
        self._last_step = step
        if not trainer.is_global_zero:
            return
        if _sharded(trainer):
            if not self._warned:
                self._warned = True
                log.warning(
                    "callbacks.hf_checkpoint: the weights are sharded across ranks by %s, so no "
                    "checkpoint-<step> folders are written; export a Lightning checkpoint with "
                    "`audio-thinker export`",
                    type(trainer.strategy).__name__,
                )
            return
        self.write(pl_module.policy, step)
        self.prune()

    def write(self, policy, step: int) -> Path:
        """`checkpoint-<step>/`, written under a temporary name and renamed into place (replacing an older one)."""
        target = self.dirpath / f"checkpoint-{step}"
        tmp = self.dirpath / f".checkpoint-{step}.tmp-{secrets.token_hex(4)}"
        try:
            export_policy(policy, tmp, load_run_config(self.run_config), step, self.dirpath.parent)
            if target.exists():  # a resumed run replays the step it resumed from
                shutil.rmtree(target)
            tmp.rename(target)
            log.info("wrote %s", target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    def prune(self) -> None:
        """Remove all but the newest `save_total_limit` folders."""
        if self.save_total_limit is None:
            return
        folders = sorted((int(m.group(1)), p) for p in self.dirpath.iterdir() if (m := FOLDER.match(p.name)))
        for _, old in folders[: -self.save_total_limit]:
            shutil.rmtree(old, ignore_errors=True)


def _sharded(trainer: L.Trainer) -> bool:
    """Whether the strategy shards parameters (FSDP, DeepSpeed stage 3): rank 0 does not hold whole weights."""
    name = type(trainer.strategy).__name__
    return name.startswith("FSDP") or (name.startswith("DeepSpeed") and _zero_stage(trainer.strategy) == 3)


def _zero_stage(strategy) -> int | None:
    config = getattr(strategy, "config", None) or {}
    return (config.get("zero_optimization") or {}).get("stage")
