"""GRPOModule: the policy, its frozen reference, the GRPO loss and the optimizer, as a LightningModule."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import lightning as L
import torch

from audio_thinker.distributed import gather_objects, sum_across_ranks
from audio_thinker.eval.validation import Validator, ValRecord, unique_records, validation_metrics
from audio_thinker.losses.grpo import GRPOLoss
from audio_thinker.models.policy import Policy
from audio_thinker.rollout.batch import Rollout
from audio_thinker.rollout.engine import logprob_mismatch

log = logging.getLogger(__name__)


class NothingTrainedError(RuntimeError):
    """A run ended without a single optimizer step that changed the weights."""


class GRPOModule(L.LightningModule):
    """Trains `policy` on the rollouts that `RolloutCallback` samples and has `RewardCallback` score.

    A generation's scored rollout is handed over once, before its first micro-step (`start_generation`), and kept
    as the buffer every micro-step of it draws from (`batch["micro_step"]`); a checkpoint taken inside a generation
    saves it.
    The reference policy is the same model with its LoRA adapters disabled when it has adapters (no second
    copy of the weights); otherwise a frozen deep copy, made only when the KL term is on (beta > 0).
    A step whose loss is not finite on any rank, or that has no completion on any rank, is skipped on every rank:
    its backward still runs (zero gradients, so DDP's all-reduce is met) but the optimizer leaves the weights,
    and its moments, untouched.
    With a `validator`, every validation run (Lightning's, every `trainer.val_check_interval` training batches, and
    its sanity check before step 1) answers the whole validation set greedily and logs `val/*`; `val_history`
    keeps (step, val/accuracy) of each.
    """

    def __init__(
        self,
        policy: Policy,
        loss: GRPOLoss,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        validator: Validator | None = None,
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
        self.trained_steps = 0  # optimizer steps that changed the weights (not skipped); 0 at the end is an error
        self.generation: Rollout | None = None  # the scored rollout the current generation's micro-steps draw from
        self._handed_over = False  # a generation was started and its first micro-step has not trained yet
        self._step_tokens: list[float] = []  # completion tokens of each optimizer step of the generation, all ranks
        self._micro_step, self._micro_steps = -1, 1  # the last micro-step trained on, of how many in the generation
        self._skip_step = False  # set by any micro-batch of the optimizer step; read by optimizer_step
        self.validator = validator
        self.val_history: list[tuple[int, float]] = []  # (global step, val/accuracy) of every validation run
        self._val_records: list[ValRecord] = []  # this rank's graded examples of the running validation
        self._baseline: dict[str, float] = {}  # val/* of the sanity check (before the first step), not logged yet

    # -- log-prob passes ------------------------------------------------------------------------------
    def policy_logps(self, rollout: Rollout) -> torch.Tensor:
        """log π_θ of the completion tokens: [B*G, C] (with grad unless called under no_grad)."""
        return self.policy.completion_logps(
            rollout.encoding,
            rollout.completion_ids,
            rollout.completion_mask,
            rollout.temperature,
            reencode_audio=self._audio_trains(),
        )

    @torch.no_grad()
    def reference_logps(self, rollout: Rollout) -> torch.Tensor:
        """log π_ref of the completion tokens: [B*G, C]."""
        reference = self.reference or self.policy
        with reference.reference_context():
            return reference.completion_logps(
                rollout.encoding,
                rollout.completion_ids,
                rollout.completion_mask,
                rollout.temperature,
                reencode_audio=self._audio_trains(),
            )

    @torch.no_grad()
    def old_policy_logps(self, rollout: Rollout) -> torch.Tensor:
        """log π_old of every completion token at sampling time, micro-batch by micro-batch (memory of one):
        [B*G, C]."""
        out = torch.zeros(rollout.completion_ids.shape, dtype=torch.float32, device=rollout.completion_ids.device)
        for index in range(rollout.num_micro_batches):
            micro = rollout.micro_batch(index)
            if micro.examples:
                out[rollout.micro_batch_rows(index), : micro.completion_ids.shape[1]] = self.policy_logps(micro)
        return out

    def _audio_trains(self) -> bool:
        """When the audio encoder/projector trains, cached features would block its gradient: re-encode."""
        return self.policy.audio_trainable()

    # -- one micro-step -------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        micro_step = batch.get("micro_step", 0)
        micro = self.micro_batch(micro_step, batch.get("micro_steps", 1))
        out = None
        if micro.examples:
            logps = self.policy_logps(micro)
            ref_logps = self.reference_logps(micro) if self.loss_fn.beta > 0 else None
            out = self.loss_fn(
                logps,
                micro.advantages,
                micro.completion_mask,
                micro.old_logps,
                ref_logps,
                num_tokens=self._dapo_normaliser(micro_step),
                sampler_weights=self.sampler_weights(micro, logps, micro_step),
            )
        nonfinite = out is not None and not torch.isfinite(out.loss).item()
        if nonfinite:
            self.nonfinite_losses += 1
            log.warning(
                "step %d: non-finite loss (%s); the step is skipped, weights unchanged (%d so far). Examples: %s",
                self.global_step,
                out.loss.item(),
                self.nonfinite_losses,
                [ex.id for ex in micro.examples],
            )
        # Every rank takes the same decision: a skip on one rank alone would leave the others' all-reduce waiting.
        # (An optimizer step without a completion on any rank is known to all ranks from the step's token count.)
        if self.trainer.strategy.reduce_boolean_decision(nonfinite, all=False) or not self._tokens_of(micro_step):
            self._skip_step = True
            self.log("loss/nonfinite_skipped", float(self.nonfinite_losses), on_step=True, batch_size=1)
        if out is None or nonfinite:
            return self.zero_loss()
        size = len(micro.examples)
        self.log("loss/total", out.loss.detach(), on_step=True, prog_bar=True, batch_size=size)
        self.log_dict(
            {
                "loss/policy": out.policy_loss,
                "loss/kl": out.kl,
                "loss/clip_fraction": out.clip_fraction,
                "loss/ratio": out.ratio_mean,
            },
            on_step=True,
            batch_size=size,
        )
        return out.loss

    def sampler_weights(self, micro: Rollout, logps: torch.Tensor, micro_step: int) -> torch.Tensor | None:
        """π_old / π_sampler per token (`loss.sampler_correction`) when an engine reported its sampling log-probs;
        logs the train-inference gap and the weights. π_old is the stored sampling-time pass, else this pass: with
        neither reuse nor several steps per generation the weights are still those that sampled."""
        if micro.sampling_logps is None:
            return None
        old = logps.detach() if micro.old_logps is None else micro.old_logps
        size = len(micro.examples)
        if micro_step == 0:
            mismatch = logprob_mismatch(old, micro.sampling_logps, micro.completion_mask)
            self.log("rollout/logprob_mismatch", mismatch, on_step=True, batch_size=size)
        correction = self.loss_fn.sampler_correction
        if not correction.enabled:
            return None
        weights = correction.weights(old, micro.sampling_logps, micro.completion_mask)
        self.log_dict(
            {"rollout/is_ratio_mean": weights.mean, "rollout/is_clipped_fraction": weights.clipped_fraction},
            on_step=True,
            batch_size=size,
        )
        return weights.weights

    def micro_batch(self, micro_step: int, micro_steps: int) -> Rollout:
        """This micro-step's share of the generation's rollout."""
        if micro_step == 0 and not self._handed_over:
            raise RuntimeError(
                "training_step: no rollout was handed over for this generation: the trainer needs RolloutCallback "
                "(audio_thinker.train.build_trainer adds it, with RewardCallback as its scorer)"
            )
        if self.generation is None:
            raise RuntimeError(f"micro-step {micro_step} has no generation to draw from (resumed without its rollout)")
        self._handed_over = False
        self._micro_step, self._micro_steps = micro_step, micro_steps
        return self.generation.micro_batch(micro_step % self.generation.num_micro_batches)

    def start_generation(self, rollout: Rollout) -> None:
        """Take a generation's scored rollout, before its first micro-step: buffer it and count each of its optimizer
        steps' completion tokens over all ranks (dapo)."""
        if rollout.advantages is None:
            raise RuntimeError("the rollout has no advantages: score it (RewardCallback.score) before handing it over")
        self.generation, self._handed_over = rollout, True
        accumulation = self.trainer.accumulate_grad_batches
        local = [0.0] * (rollout.num_micro_batches // accumulation)
        for index in range(rollout.num_micro_batches):
            local[index // accumulation] += float(rollout.completion_mask[rollout.micro_batch_rows(index)].sum())
        self._step_tokens = sum_across_ranks(local, self.trainer.strategy)

    def _tokens_of(self, micro_step: int) -> float:
        """Completion tokens of the optimizer step `micro_step` belongs to, summed over every rank."""
        micro_index = micro_step % self.generation.num_micro_batches
        return self._step_tokens[micro_index // self.trainer.accumulate_grad_batches]

    def _dapo_normaliser(self, micro_step: int) -> float | None:
        """The step's tokens over all ranks / (accumulation x world size): see GRPOLoss's `dapo`."""
        if self.loss_fn.aggregation != "dapo":
            return None
        return self._tokens_of(micro_step) / (self.trainer.accumulate_grad_batches * self.trainer.world_size)

    def zero_loss(self) -> torch.Tensor:
        """A loss of 0 that reaches every trainable parameter: DDP's gradient hooks fire on this rank too."""
        params = [p for p in self.policy.parameters() if p.requires_grad]
        return torch.stack([p.sum() for p in params]).sum() * 0.0

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        """The optimizer step, unless a micro-batch of it (on any rank) was skipped: then gradients are dropped,
        so the optimizer leaves the weights and its moments as they were (torch optimizers skip `grad=None`)."""

        def closure():
            loss = optimizer_closure()
            if self._skip_step:
                optimizer.zero_grad(set_to_none=True)
            return loss

        optimizer.step(closure=closure)
        self.trained_steps += not self._skip_step
        self._skip_step = False

    def check_trained(self) -> None:
        """Raise `NothingTrainedError` after a run whose every optimizer step was skipped (none changed the weights)."""
        if self.trained_steps == 0 and self.global_step > 0:
            raise NothingTrainedError(
                f"none of the {self.global_step} optimizer step(s) changed the weights: each was skipped "
                f"({self.nonfinite_losses} micro-batch(es) with a non-finite loss; the others had no usable "
                "example, see the data warnings above), so nothing was exported. Fix the data (audio-thinker data "
                "check) or the setting the warnings name, and run again"
            )

    # -- validation ----------------------------------------------------------------------------------
    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """Greedy answers to a batch of held-out examples, graded and kept for the end of the validation run."""
        if self.validator is not None and batch["examples"]:
            self._val_records += self.validator.grade(self.policy, batch["examples"])

    def on_validation_epoch_end(self) -> None:
        """`val/*` over the whole validation set: every rank's records, each example once."""
        if self.validator is None:
            return
        records = [r for part in gather_objects(self._val_records, self.trainer.strategy) for r in part]
        self._val_records = []
        metrics = validation_metrics(unique_records(records))
        if not metrics:
            return
        if self.trainer.sanity_checking and not self._sanity_check_is_whole():
            return  # a partial set is no baseline (trainer.num_sanity_val_steps=-1 checks the whole of it)
        step = self.global_step
        self.val_history.append((step, metrics["val/accuracy"]))
        log.info(
            "step %d: val/accuracy %.3f over %d examples", step, metrics["val/accuracy"], int(metrics["val/examples"])
        )
        if self.trainer.sanity_checking:  # before the first step; Lightning drops what self.log records here
            self._baseline = metrics
            return
        self.log_dict(metrics, batch_size=len(records), logger=False)  # for monitors; the same on every rank
        self._log_at_step(metrics)

    def on_train_start(self) -> None:
        # After the callbacks' on_train_start, so after a resumed run has told TensorBoard to drop the killed
        # run's events from this step on (FlushLogsCallback): the step's validation is then shown once.
        if self._baseline:
            self._log_at_step(self._baseline)
        self._baseline = {}

    def _log_at_step(self, metrics: dict[str, float]) -> None:
        """To the loggers at x = optimizer steps taken (0 before the first), as the scaling curve is logged.

        (Lightning's own validation logging would place the result after k steps at x = k - 1, on the baseline's
        x for k = 1.)
        """
        if self.trainer.is_global_zero:
            for logger in self.loggers:
                logger.log_metrics(metrics, step=self.global_step)

    def _sanity_check_is_whole(self) -> bool:
        """Whether Lightning's sanity check ran every validation batch."""
        return list(self.trainer.num_sanity_val_batches) == list(self.trainer.num_val_batches)

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
    # which are rebuilt from the model config: a 7B QLoRA checkpoint stays megabytes), plus our counters, and the
    # generation's rollout when the checkpoint falls inside a generation.
    def frozen_keys(self) -> set[str]:
        """State-dict keys of parameters that never train."""
        return {name for name, param in self.named_parameters() if not param.requires_grad}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint["state_dict"]
        for key in self.frozen_keys() & state.keys():
            del state[key]
        checkpoint["nonfinite_losses"] = self.nonfinite_losses
        checkpoint["trained_steps"] = self.trained_steps
        checkpoint["model_dtype"] = str(self.policy.hf_model.config.dtype).removeprefix("torch.")  # for `export`
        generation = self.generation
        if generation is not None and self._micro_step + 1 < self._micro_steps:  # inside a generation
            checkpoint["generation"] = {
                "rollout": generation.state_dict(),
                "step_tokens": self._step_tokens,
                "micro_step": self._micro_step,
                "micro_steps": self._micro_steps,
            }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint["state_dict"]
        current = self.state_dict()
        for key in self.frozen_keys():
            state.setdefault(key, current[key])
        self.nonfinite_losses = checkpoint.get("nonfinite_losses", 0)
        self.trained_steps = checkpoint.get("trained_steps", checkpoint.get("global_step", 0))  # older: assume all
        if (saved := checkpoint.get("generation")) is not None:
            rollout = Rollout.from_state_dict(saved["rollout"])
            self.generation = rollout.to(self.policy.device)
            self._step_tokens, self._micro_step = saved["step_tokens"], saved["micro_step"]
            self._micro_steps = saved["micro_steps"]
