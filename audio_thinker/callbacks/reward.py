"""The Lightning callback that scores a generation's rollout once, combines the terms and computes advantages."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial

import lightning as L
import torch

from audio_thinker.distributed import gather_objects, sum_across_ranks
from audio_thinker.loggers import log_step_scalars
from audio_thinker.losses.advantages import ScaleRewards, group_advantages, scale_rewards_mode, std_from_sums
from audio_thinker.rewards.base import RewardInputs
from audio_thinker.rewards.suite import RewardSuite
from audio_thinker.rollout.batch import Rollout


class RewardCallback(L.Callback):
    """Scores a generation's rollout with the configured suite (`score`, which the rollout callback calls once per
    generation) and logs every term at every step.

    Step-wide statistics are taken over the whole generation on every rank: the adaptive reward's λ, the judge's
    batch means, and the std of `scale_rewards=batch`. Each rank enters each collective, even one whose examples
    were all skipped. The scored rollout is a new value (`dataclasses.replace`); the sampled one is not changed.

    `scale_rewards` (`loss.scale_rewards`): `group` divides advantages by the group's reward std (GRPO), `batch` by
    the std over the whole step, `none` not at all (Dr. GRPO).

    Tags, logged at every step with the values of the generation it trains on: `reward/total`, `reward/<term>`
    (mean over applicable completions) and `reward/<term>_std`, `completion/length`, `think/rate`, `think/length`,
    `answer/length`, `format/malformed_rate`, `think/rate_by_difficulty/<d>` (the think-mode share among the
    completions of examples of difficulty d), and what the terms report through `metrics()` (`judge/failures`).
    Every `log_samples_every_n_steps` steps (0: never) the judge terms' first prompts, replies and values go to
    TensorBoard as text, `samples/judge`.
    """

    def __init__(
        self, suite: RewardSuite, scale_rewards: ScaleRewards = "group", log_samples_every_n_steps: int = 0
    ) -> None:
        self.suite = suite
        self.scale_rewards = scale_rewards_mode(scale_rewards)
        self.log_samples_every_n_steps = log_samples_every_n_steps
        self.last_metrics: dict[str, float] = {}  # of the last generation scored: logged at each of its steps
        self._samples_step = -1  # the step whose judge samples were logged last

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch: dict, batch_idx: int) -> None:
        log_step_scalars(trainer, batch_idx, self.last_metrics)  # every step: its generation's rewards
        step, every = trainer.global_step, self.log_samples_every_n_steps
        if every and step % every == 0 and step != self._samples_step:
            experiment = getattr(trainer.logger, "experiment", None)
            if (text := self.judge_samples()) and hasattr(experiment, "add_text"):
                experiment.add_text("samples/judge", text, global_step=step)
                self._samples_step = step

    def state_dict(self) -> dict:
        """The current generation's metrics: a run resumed inside a generation logs them at its next steps too."""
        return {"last_metrics": self.last_metrics}

    def load_state_dict(self, state_dict: dict) -> None:
        self.last_metrics = dict(state_dict.get("last_metrics", {}))

    def score(self, rollout: Rollout, trainer: L.Trainer) -> Rollout:
        """The rollout with rewards, per-term values and advantages; its metrics are kept for the steps that train
        on it (`last_metrics`)."""
        scored = self.with_rewards(rollout, trainer)
        self.last_metrics = self.metrics(
            scored,
            partial(sum_across_ranks, strategy=trainer.strategy),
            partial(gather_objects, strategy=trainer.strategy),
        )
        return scored

    def with_rewards(self, rollout: Rollout, trainer: L.Trainer) -> Rollout:
        """The rollout with rewards, per-term values and advantages."""
        step_sum = partial(sum_across_ranks, strategy=trainer.strategy)
        thinking, total = step_sum([sum(c.mode == "think" for c in rollout.completions), rollout.size])
        inputs = RewardInputs(
            completions=rollout.completions,
            examples=rollout.expanded_examples(),
            think_lengths=rollout.think_lengths,
            answer_lengths=rollout.answer_lengths,
            group_size=rollout.group_size,
            step=trainer.global_step,
            total_steps=_total_steps(trainer),
            batch_think_share=thinking / total if total else None,
            sum_over_step=step_sum,
        )
        result = self.suite(inputs)
        rewards = result.total.to(torch.float64)
        count, total_reward, total_sq = step_sum([rewards.numel(), rewards.sum().item(), (rewards**2).sum().item()])
        batch_std = std_from_sums(count, total_reward, total_sq) if self.scale_rewards == "batch" else None
        advantages = group_advantages(result.total, rollout.group_size, self.scale_rewards, batch_std=batch_std)
        return replace(
            rollout,
            rewards=result.total,
            reward_terms=result.terms,
            advantages=advantages.to(rollout.completion_ids.device),
        )

    def metrics(self, rollout: Rollout, step_sum=list, gather=lambda obj: [obj]) -> dict[str, float]:
        """The step's reward and shape statistics over every rank (`step_sum`: the cross-rank sum, `gather`: every
        rank's object; both collectives).

        Means and unbiased stds come from summed counts, sums and squares, so under DDP `reward/*` describes the
        whole step, not rank 0's share; the difficulty labels are the union of every rank's. The terms' own
        `metrics()` (judge counts) are this rank's.
        """
        think = sum(c.mode == "think" for c in rollout.completions)
        malformed = sum(c.mode == "malformed" for c in rollout.completions)
        shapes = {
            "completion/length": float(rollout.completion_mask.sum()) if rollout.size else 0.0,
            "think/rate": float(think),
            "think/length": float(sum(rollout.think_lengths)),
            "answer/length": float(sum(rollout.answer_lengths)),
            "format/malformed_rate": float(malformed),
        }
        spreads = {
            "reward/total": rollout.rewards,
            **{f"reward/{k}": v for k, v in sorted(rollout.reward_terms.items())},
        }
        local = [float(rollout.size), *shapes.values()]
        for values in spreads.values():
            applicable = values[~values.isnan()].double()
            local += [applicable.numel(), applicable.sum().item(), (applicable**2).sum().item()]
        difficulties = sorted(set().union(*gather({ex.difficulty for ex in rollout.examples})))
        examples = rollout.expanded_examples()
        modes = [(ex.difficulty, c.mode) for ex, c in zip(examples, rollout.completions, strict=True)]
        for name in difficulties:
            local += [sum(d == name for d, _ in modes), sum(d == name and m == "think" for d, m in modes)]
        summed = step_sum(local)
        completions, out = summed[0], {}
        if not completions:
            return out
        for i, key in enumerate(shapes, start=1):
            out[key] = summed[i] / completions
        for j, key in enumerate(spreads):
            count, total, total_sq = summed[1 + len(shapes) + 3 * j : 4 + len(shapes) + 3 * j]
            if count:
                out[key], out[f"{key}_std"] = total / count, std_from_sums(count, total, total_sq)
        by_difficulty = summed[1 + len(shapes) + 3 * len(spreads) :]
        for name, count, thinking in zip(difficulties, by_difficulty[::2], by_difficulty[1::2], strict=True):
            if count:
                out[f"think/rate_by_difficulty/{name}"] = thinking / count
        for name, term in self.suite.terms.items():  # terms may share a key (two judge terms): counts add up
            for key, value in term.metrics().items():
                out[key] = out.get(key, 0.0) + _one_number(value, f"reward.terms.{name}: metrics()[{key!r}]")
        return out

    def judge_samples(self) -> str:
        """Markdown: per judge term, each exchange it kept of its last call: prompt (verbatim), reply, value."""
        blocks = []
        for name, term in self.suite.terms.items():
            for exchange in getattr(term, "exchanges", []):
                prompt = "\n".join("    " + line for line in str(exchange["prompt"]).splitlines())
                blocks.append(f"**{name}** reply {exchange['reply']!r} -> value {exchange['value']}\n\n{prompt}")
        return "\n\n".join(blocks)


def _total_steps(trainer: L.Trainer) -> int:
    """T of the adaptive schedule: the run's optimizer steps (0 when unbounded: terms that need T then say so)."""
    total = trainer.estimated_stepping_batches
    return int(total) if math.isfinite(total) else 0


def _one_number(value, where: str) -> float:
    """`value` as a float, or an error naming where it came from (a term's own `metrics()` may return anything)."""
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{where} is {value!r}: a reward term's metrics() must map each name to one number") from err
