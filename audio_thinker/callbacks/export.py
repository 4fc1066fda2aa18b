"""Export the policy when training ends: the adapter (or the full model), its processor and a model card."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L

from audio_thinker.models.hf_export import export_policy, load_run_config

log = logging.getLogger(__name__)


class ExportCallback(L.Callback):
    """At the end of training, export the policy (adapter or full model + processor + model card) to `dirpath`.

    `run_config`: the run's `.hydra/config.yaml`, read for the model card (optional). A run none of whose optimizer
    steps changed the weights (`GRPOModule.trained_steps`) exports nothing: it would be the base model under a
    trained model's card.
    """

    def __init__(self, dirpath: str, run_config: str | None = None) -> None:
        self.dirpath, self.run_config = dirpath, run_config

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        if getattr(pl_module, "trained_steps", None) == 0:
            log.warning("no optimizer step changed the weights: nothing is exported to %s", self.dirpath)
            return
        if trainer.is_global_zero:
            run_cfg = load_run_config(self.run_config)
            out = export_policy(pl_module.policy, self.dirpath, run_cfg, trainer.global_step, Path(self.dirpath).parent)
            log.info("exported the %s to %s", "LoRA adapter" if pl_module.policy.has_adapters else "model", out)
