"""The Lightning callback that samples a rollout before every training step."""

from __future__ import annotations

import logging

import lightning as L
import torch

from audio_thinker.data.skips import SkipLedger
from audio_thinker.rollout.batch import RolloutBatch
from audio_thinker.rollout.sampler import sample_rollouts

log = logging.getLogger(__name__)


class RolloutCallback(L.Callback):
    """Samples G completions per example and attaches them to the batch as `batch["rollout"]`.

    With `num_iterations` = μ > 1 a rollout is optimised for μ consecutive steps (the batches drawn in
    between are not sampled from) and the log-probs at sampling time are stored for the importance ratio.
    With μ = 1 that extra pass is skipped: the ratio is 1 by definition.
    """

    def __init__(
        self,
        prompt,
        group_size: int = 4,
        max_new_tokens: int = 64,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        min_new_tokens: int = 0,
        num_iterations: int = 1,
        log_samples_every_n_steps: int = 50,
        num_samples_to_log: int = 4,
    ) -> None:
        if group_size < 2:
            raise ValueError(f"rollout.group_size must be >= 2 for group-relative advantages, got {group_size}")
        if num_iterations < 1:
            raise ValueError(f"rollout.num_iterations must be >= 1, got {num_iterations}")
        self.prompt = prompt
        self.group_size, self.max_new_tokens = group_size, max_new_tokens
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.min_new_tokens = min_new_tokens  # > 0 forbids stopping earlier (fixed-length benchmarks)
        self.num_iterations = num_iterations
        self.log_every, self.num_samples_to_log = log_samples_every_n_steps, num_samples_to_log
        self.skips = SkipLedger()  # what the data policy skipped (each was logged with its reason); set in setup
        self._cached: RolloutBatch | None = None
        self._uses_left = 0

    def setup(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        # The datamodule's limits and its records dropped at read time; a resume then loads the counts.
        self.skips = trainer.datamodule.skip_ledger() if hasattr(trainer.datamodule, "skip_ledger") else SkipLedger()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch: dict, batch_idx: int) -> None:
        self.skips.record(len(batch["examples"]), batch.get("skips", []))
        self.skips.check(lambda stop: trainer.strategy.reduce_boolean_decision(stop, all=False))
        if self._uses_left > 0 and self._cached is not None:
            self._uses_left -= 1
            batch["rollout"] = self._cached
            return
        examples = batch["examples"]
        pl_module.log_dict(self.skips.metrics(), on_step=True, batch_size=max(len(examples), 1))
        if not examples:  # every example of this batch was skipped by the data policy
            batch["rollout"] = None
            return
        rollout = sample_rollouts(
            pl_module.policy, examples, self.prompt, self.group_size, self.max_new_tokens,
            self.temperature, self.top_p, self.top_k, self.min_new_tokens,
        )  # fmt: skip
        if self.num_iterations > 1:
            with torch.no_grad():
                rollout.old_logps = pl_module.policy_logps(rollout)
        self._cached, self._uses_left = rollout, self.num_iterations - 1
        batch["rollout"] = rollout
        if self.log_every and trainer.global_step % self.log_every == 0:
            self._log_samples(trainer, rollout)

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        (log.warning if self.skips.distinct else log.info)("data: %s", self.skips.summary())

    def state_dict(self) -> dict:
        """The skip counts survive a resume (Lightning stores callback state in checkpoints)."""
        return {"skips": self.skips.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        if "skips" in state_dict:  # checkpoints from before the ledger hold only a draw count
            self.skips.load_state_dict(state_dict["skips"])

    def _log_samples(self, trainer: L.Trainer, rollout: RolloutBatch) -> None:
        """A few completions as TensorBoard text, so a user reads what the policy writes."""
        experiment = getattr(trainer.logger, "experiment", None)
        if not hasattr(experiment, "add_text"):
            return
        lines = []
        for i in range(min(self.num_samples_to_log, rollout.size)):
            ex, done = rollout.example_of(i), rollout.completions[i]
            lines.append(f"**{ex.id}** ({ex.task}, gold: {ex.answer}) [{done.mode}]\n\n    {done.text}")
        experiment.add_text("samples/completions", "\n\n".join(lines), global_step=trainer.global_step)
