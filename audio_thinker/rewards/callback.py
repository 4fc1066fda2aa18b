"""The Lightning callback that scores a rollout, combines the terms and computes group advantages."""

from __future__ import annotations

import math

import lightning as L
import torch

from audio_thinker.losses.advantages import group_advantages
from audio_thinker.rewards.base import RewardInputs
from audio_thinker.rewards.suite import RewardSuite
from audio_thinker.rollout.batch import RolloutBatch


class RewardCallback(L.Callback):
    """Scores `batch["rollout"]` with the configured suite and logs every term.

    Tags: `reward/total`, `reward/<term>` (mean over applicable completions) and `reward/<term>_std`,
    `completion/length`, `think/rate`, `think/length`, `answer/length`, `format/malformed_rate`,
    plus whatever the terms report through `metrics()` (e.g. `judge/failures`).
    """

    def __init__(self, suite: RewardSuite) -> None:
        self.suite = suite

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch: dict, batch_idx: int) -> None:
        rollout: RolloutBatch | None = batch.get("rollout")
        if rollout is None or rollout.advantages is not None:  # nothing sampled, or a reused rollout
            return
        inputs = RewardInputs(
            completions=rollout.completions,
            examples=rollout.expanded_examples(),
            think_lengths=rollout.think_lengths,
            answer_lengths=rollout.answer_lengths,
            group_size=rollout.group_size,
            step=trainer.global_step,
            total_steps=_total_steps(trainer),
            batch_think_share=self._think_share(pl_module, rollout),
        )
        result = self.suite(inputs)
        rollout.rewards, rollout.reward_terms = result.total, result.terms
        rollout.advantages = group_advantages(result.total, rollout.group_size, pl_module.loss_fn.scale_rewards).to(
            rollout.completion_ids.device
        )
        pl_module.log_dict(self.metrics(rollout), on_step=True, batch_size=len(rollout.examples))

    @staticmethod
    def _think_share(pl_module, rollout: RolloutBatch) -> float:
        """λ of the adaptive reward: think-mode share over the step's completions on every rank (one rank's batch
        alone can be a single prompt's group under data parallelism with batch size 1)."""
        thinking = sum(c.mode == "think" for c in rollout.completions)
        counts = torch.tensor([float(thinking), float(rollout.size)], device=rollout.completion_ids.device)
        gathered = pl_module.all_gather(counts)  # [2] on one device, [world, 2] under DDP
        total = gathered.reshape(-1, 2).sum(dim=0)
        return float(total[0] / total[1])

    def metrics(self, rollout: RolloutBatch) -> dict[str, float]:
        """Scalars describing the rollout's rewards and shapes."""
        think = torch.tensor([c.mode == "think" for c in rollout.completions], dtype=torch.float32)
        out = {
            "reward/total": rollout.rewards.mean().item(),
            "reward/total_std": rollout.rewards.std().item() if rollout.size > 1 else 0.0,
            "completion/length": rollout.completion_mask.sum(dim=1).float().mean().item(),
            "think/rate": think.mean().item(),
            "think/length": float(sum(rollout.think_lengths)) / max(rollout.size, 1),
            "answer/length": float(sum(rollout.answer_lengths)) / max(rollout.size, 1),
            "format/malformed_rate": sum(c.mode == "malformed" for c in rollout.completions) / rollout.size,
        }
        for name, values in rollout.reward_terms.items():
            applicable = values[~values.isnan()]
            if applicable.numel():
                out[f"reward/{name}"] = applicable.mean().item()
                out[f"reward/{name}_std"] = applicable.std().item() if applicable.numel() > 1 else 0.0
        for term in self.suite.terms.values():  # terms may share a key (two judge terms): counts add up
            for key, value in term.metrics().items():
                out[key] = out.get(key, 0.0) + value
        return out


def _total_steps(trainer: L.Trainer) -> int:
    """T of the adaptive schedule: the run's optimizer steps (0 when unbounded: terms that need T then say so)."""
    total = trainer.estimated_stepping_batches
    return int(total) if math.isfinite(total) else 0
