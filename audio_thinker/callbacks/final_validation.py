"""Validation after the last training step, so a run ends with the held-out accuracy of the weights it ends with."""

from __future__ import annotations

import lightning as L


class ValidateAfterLastStep(L.Callback):
    """Validate the final weights too when `trainer.val_check_interval` does not land on `trainer.max_steps`.

    Without it a run of 30 steps validating every 20 ends with step 20's `val/accuracy`, and one shorter than the
    interval with none after training at all: a sweep ranking trials by their final `val/accuracy` would rank them
    on earlier weights, or on nothing. Lightning validates after any batch at which the trainer is told to stop,
    so this tells it to stop at the last step, where training ends anyway. Runs limited by epochs (max_steps=-1),
    or held on by trainer.min_steps / min_epochs, are left as they are.
    """

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        # global_step counts optimizer steps: with gradient accumulation it reaches max_steps at the step's last batch.
        if 0 < trainer.max_steps <= trainer.global_step and trainer.enable_validation:
            trainer.should_stop = True
