"""GRPOModule: the policy, its frozen reference, the GRPO loss and the optimizer, as a LightningModule."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import lightning as L
import torch

from audio_thinker.losses.grpo import GRPOLoss
from audio_thinker.models.policy import Policy
from audio_thinker.rollout.batch import RolloutBatch

log = logging.getLogger(__name__)


class GRPOModule(L.LightningModule):
    """Trains `policy` on rollouts that `RolloutCallback` attaches to each batch and `RewardCallback` scores.

    The reference policy is the same model with its LoRA adapters disabled when it has adapters (no second
    copy of the weights); otherwise a frozen deep copy, made only when the KL term is on (beta > 0).
    """

    def __init__(
        self,
        policy: Policy,
        loss: GRPOLoss,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
    ) -> None:
        super().__init__()
        self.policy, self.loss_fn = policy, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.reference: Policy | None = None
        if loss.beta > 0 and not policy.has_adapters:
            # Frozen by requires_grad, not by eval(): dropout is already off, and keeping the train/eval
            # mode equal to the policy's keeps both on the same code paths.
            self.reference = copy.deepcopy(policy).requires_grad_(False)
        self.nonfinite_losses = 0

    # -- log-prob passes ------------------------------------------------------------------------------
    def policy_logps(self, rollout: RolloutBatch) -> torch.Tensor:
        """log π_θ of the completion tokens: [B*G, C] (with grad unless called under no_grad)."""
        return self.policy.completion_logps(
            rollout.encoding, rollout.completion_ids, rollout.completion_mask, rollout.temperature,
            reencode_audio=self._audio_trains(),
        )  # fmt: skip

    @torch.no_grad()
    def reference_logps(self, rollout: RolloutBatch) -> torch.Tensor:
        """log π_ref of the completion tokens: [B*G, C]."""
        reference = self.reference or self.policy
        with reference.reference_context():
            return reference.completion_logps(
                rollout.encoding, rollout.completion_ids, rollout.completion_mask, rollout.temperature,
                reencode_audio=self._audio_trains(),
            )  # fmt: skip

    def _audio_trains(self) -> bool:
        """When the audio encoder/projector trains, cached features would block its gradient: re-encode."""
        return bool(getattr(self.policy, "audio_trainable", lambda: False)())

    # -- Lightning hooks ------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        if "rollout" not in batch:
            raise RuntimeError("training_step found no rollout in the batch: add RolloutCallback to the trainer")
        rollout: RolloutBatch | None = batch["rollout"]
        out = None
        if rollout is not None:  # None: every example of this batch was skipped by the data policy (counted there)
            if rollout.advantages is None:
                raise RuntimeError("the rollout has no advantages: add RewardCallback after RolloutCallback")
            logps = self.policy_logps(rollout)
            ref_logps = self.reference_logps(rollout) if self.loss_fn.beta > 0 else None
            out = self.loss_fn(logps, rollout.advantages, rollout.completion_mask, rollout.old_logps, ref_logps)
        nonfinite = out is not None and not torch.isfinite(out.loss).item()
        # Every rank must skip together, or DDP's gradient all-reduce would wait forever for the skipping rank.
        if self.trainer.strategy.reduce_boolean_decision(out is None or nonfinite, all=False):
            if nonfinite:
                self.nonfinite_losses += 1
                log.warning(
                    "step %d: non-finite loss (%s); skipped, weights unchanged (%d skipped so far). Examples: %s",
                    self.global_step, out.loss.item(), self.nonfinite_losses, [ex.id for ex in rollout.examples],
                )  # fmt: skip
            self.log("loss/nonfinite_skipped", float(self.nonfinite_losses), on_step=True, batch_size=1)
            return None
        size = len(rollout.examples)
        self.log("loss/total", out.loss.detach(), on_step=True, prog_bar=True, batch_size=size)
        self.log_dict(
            {"loss/policy": out.policy_loss, "loss/kl": out.kl, "loss/clip_fraction": out.clip_fraction,
             "loss/ratio": out.ratio_mean},
            on_step=True, batch_size=size,
        )  # fmt: skip
        return out.loss

    def configure_optimizers(self):
        params = [p for p in self.policy.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the policy has no trainable parameters: check the LoRA target modules or freezing")
        optimizer = self.optimizer_factory(params=params)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # Checkpoints hold what training changes: trainable weights (not the frozen base or the reference copy,
    # which are rebuilt from the model config: a 7B QLoRA checkpoint stays megabytes), plus our counters.
    def frozen_keys(self) -> set[str]:
        """State-dict keys of parameters that never train."""
        return {name for name, param in self.named_parameters() if not param.requires_grad}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint["state_dict"]
        for key in self.frozen_keys() & state.keys():
            del state[key]
        checkpoint["nonfinite_losses"] = self.nonfinite_losses

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint["state_dict"]
        current = self.state_dict()
        for key in self.frozen_keys():
            state.setdefault(key, current[key])
        self.nonfinite_losses = checkpoint.get("nonfinite_losses", 0)
