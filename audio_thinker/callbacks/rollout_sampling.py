"""The Lightning callback that samples one rollout per generation (by default, per optimizer step), has it scored
and hands it to the module."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Protocol

import lightning as L

from audio_thinker.data.generations import GenerationPlan
from audio_thinker.data.skips import SkipLedger
from audio_thinker.format.options import lettered_options
from audio_thinker.loggers import log_step_scalars, log_table
from audio_thinker.module import GRPOModule
from audio_thinker.rollout.batch import Rollout
from audio_thinker.rollout.engine import RolloutEngine, SamplingSettings
from audio_thinker.rollout.engine_registry import build_engine, check_generation_weights, engine_generation_kwargs
from audio_thinker.rollout.sampler import sample_rollout

log = logging.getLogger(__name__)


class RolloutScorer(Protocol):
    """What scores a sampled rollout: `RewardCallback` (rewards, per-term values and advantages over the step)."""

    def score(self, rollout: Rollout, trainer: L.Trainer) -> Rollout:
        """A new rollout, scored; the one given is not changed."""
        ...


class RolloutCallback(L.Callback):
    """Samples G completions per example of a whole generation, has them scored by `scorer`, and hands the scored
    rollout to the module (`GRPOModule.start_generation`), at the generation's first micro-step:

        rollout = self.sample(...)                 # Rollout: token ids, masks, parsed completions
        rollout = replace(rollout, old_logps=...)  # only when a generation outlives one optimizer step
        scored = self.scorer.score(rollout, ...)   # a new Rollout with rewards and advantages
        pl_module.start_generation(scored)         # the module draws every micro-batch from it

    A generation is the examples of `steps_per_generation` optimizer steps (each `accumulate_grad_batches`
    micro-batches) on this rank. With `num_iterations` = μ > 1 the generation is optimised in μ passes over all of
    its micro-batches (TRL's semantics: no data dropped). When the generation outlives one optimizer step (μ > 1 or
    `steps_per_generation` > 1) the log-probs at sampling time are stored for the importance ratio, as TRL does;
    otherwise that extra pass is skipped: every micro-batch trains on the weights that sampled it, ratio 1.

    `scorer` is given by whoever builds the trainer (`audio_thinker.train.build_trainer`: the `RewardCallback`);
    configs leave it out, as `started_engine` (an engine whose server `train` started before the policy loaded,
    `rollout/server_start.py`). `engine` names the rollout engine (`hf`: transformers generate on the policy; `vllm`: a
    vLLM server configured by `server`); its weights are synced before a generation whenever an optimizer step
    happened since the last one (`rollout/sync_seconds`), so a resumed run re-syncs before its first rollout.
    `generation_kwargs` are more sampling settings (repetition_penalty, min_p, ...), put under the engine's names or
    refused by it here, at start. `generation_weights=merged` has the hf engine sample from a plain copy of a LoRA or
    QLoRA policy's language model (adapters merged, NF4 dequantised), refreshed at each sync. Every
    `log_samples_every_n_steps` steps the scored completions are logged as a table (`samples/completions`).
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
        steps_per_generation: int = 1,
        engine: str = "hf",
        server: dict | None = None,
        generation_kwargs: dict | None = None,
        generation_weights: str = "policy",
        log_samples_every_n_steps: int = 50,
        num_samples_to_log: int = 4,
        scorer: RolloutScorer | None = None,
        started_engine: RolloutEngine | None = None,
    ) -> None:
        if group_size < 2:
            raise ValueError(f"rollout.group_size must be >= 2 for group-relative advantages, got {group_size}")
        if num_iterations < 1 or steps_per_generation < 1:
            raise ValueError(
                f"rollout.num_iterations and rollout.steps_per_generation must be >= 1, "
                f"got {num_iterations} and {steps_per_generation}"
            )
        self.prompt, self.group_size = prompt, group_size
        self.sampling = SamplingSettings(
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            max_new_tokens=max_new_tokens,
            min_new_tokens=min_new_tokens,
            generation_kwargs=engine_generation_kwargs(engine, generation_kwargs),  # refused here, before step 1
        )
        self.num_iterations, self.steps_per_generation = num_iterations, steps_per_generation
        check_generation_weights(engine, generation_weights)  # refused here too: vllm with merged, a typo
        self.engine_name, self.engine_options = engine, dict(server or {})
        self.generation_weights = generation_weights
        self.engine: RolloutEngine | None = None
        self.started_engine = started_engine  # used (once) instead of building one in `setup`
        self.scorer = scorer
        self.log_every, self.num_samples_to_log = log_samples_every_n_steps, num_samples_to_log
        self.skips = SkipLedger()  # what the data policy skipped (each was logged with its reason); set in setup
        self.scored: Rollout | None = None  # the current generation, as handed over (logged as a table)
        self.step_metrics: dict[str, float] = {}  # skip counts and sync time of the current generation
        self._synced_step: int | None = None  # global step of the weights the engine samples from
        self._generation_step = 0  # global step at which the current generation was sampled

    # -- setup -----------------------------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: GRPOModule, stage: str) -> None:
        if stage != "fit":
            return
        if self.scorer is None:
            raise TypeError(
                "RolloutCallback has no scorer: build the trainer with audio_thinker.train.build_trainer, or pass "
                "scorer=RewardCallback(suite) (and list that callback too)"
            )
        datamodule = trainer.datamodule
        # The datamodule's limits and its records dropped at read time; a resume then loads the counts.
        self.skips = datamodule.skip_ledger() if hasattr(datamodule, "skip_ledger") else SkipLedger()
        if not hasattr(datamodule, "set_generation_plan"):
            raise TypeError(
                "RolloutCallback needs a datamodule with set_generation_plan (AudioQADataModule): pass "
                "`datamodule=` to trainer.fit"
            )
        datamodule.set_generation_plan(self.plan(trainer))
        started, self.started_engine = self.started_engine, None  # closed at teardown: not for a second fit
        self.engine = started or build_engine(self.engine_name, self.engine_options, self.generation_weights)

    def plan(self, trainer: L.Trainer) -> GenerationPlan:
        """Micro-batches per generation and passes over them, from the trainer's accumulation and our settings."""
        return GenerationPlan(trainer.accumulate_grad_batches * self.steps_per_generation, self.num_iterations)

    def teardown(self, trainer: L.Trainer, pl_module: GRPOModule, stage: str) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def on_exception(self, trainer: L.Trainer, pl_module: GRPOModule, exception: BaseException) -> None:
        """A crash or Ctrl-C releases the engine too (a server engine stops its server, removes its weights)."""
        self.teardown(trainer, pl_module, "fit")

    # -- one generation --------------------------------------------------------------------------------------
    def on_train_batch_start(self, trainer: L.Trainer, pl_module: GRPOModule, batch: dict, batch_idx: int) -> None:
        if batch.get("micro_step", 0) == 0:  # else the module draws this micro-batch from the generation it has
            self.start_generation(trainer, pl_module, batch)
        log_step_scalars(trainer, batch_idx, self.step_metrics)  # at each of the generation's steps

    def start_generation(self, trainer: L.Trainer, pl_module: GRPOModule, batch: dict) -> None:
        """Count skips, sync the engine, sample, score and hand the rollout over to the module."""
        examples = batch["examples"]
        self.count_skips(trainer, batch)
        self.sync_weights(trainer, pl_module)
        rollout = self.sample(pl_module, examples, self.plan(trainer).micro_batches)
        if self.num_iterations * self.steps_per_generation > 1 and rollout.examples:
            rollout = replace(rollout, old_logps=pl_module.old_policy_logps(rollout))
        self.scored = self.scorer.score(rollout, trainer)
        pl_module.start_generation(self.scored)
        self._generation_step = trainer.global_step

    def count_skips(self, trainer: L.Trainer, batch: dict) -> None:
        """Record the generation's skipped examples (all of them: once per generation) and stop when too many."""
        examples = batch["examples"]
        self.skips.record(len(examples), batch.get("skips", []))
        self.skips.check(lambda stop: trainer.strategy.reduce_boolean_decision(stop, all=False))
        self.step_metrics.update(self.skips.metrics())

    def sync_weights(self, trainer: L.Trainer, pl_module: GRPOModule) -> None:
        """Give the engine the policy's weights when an optimizer step happened since it last had them."""
        if self._synced_step == trainer.global_step:
            return
        start = time.perf_counter()
        self.engine.sync_weights(pl_module.policy)
        self._synced_step = trainer.global_step
        self.step_metrics["rollout/sync_seconds"] = time.perf_counter() - start

    def sample(self, pl_module: GRPOModule, examples: list, micro_batches: int) -> Rollout:
        """This rank's rollout of the generation (an empty one when every example was skipped)."""
        if not examples:
            return Rollout.empty(self.group_size, micro_batches, pl_module.policy.device, self.sampling.temperature)
        return sample_rollout(
            pl_module.policy, examples, self.prompt, self.group_size, self.sampling, self.engine, micro_batches
        )

    def on_train_end(self, trainer: L.Trainer, pl_module: GRPOModule) -> None:
        (log.warning if self.skips.distinct else log.info)("data: %s", self.skips.summary())

    def state_dict(self) -> dict:
        """The skip counts and the current generation's scalars survive a resume (Lightning stores callback state in
        checkpoints): a run resumed inside a generation writes them at its remaining steps too."""
        return {"skips": self.skips.state_dict(), "step_metrics": dict(self.step_metrics)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.skips.load_state_dict(state_dict["skips"])
        # Checkpoints from before the scalars were kept: the skip counts, which change only when a generation starts.
        self.step_metrics = dict(state_dict.get("step_metrics") or self.skips.metrics())

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: GRPOModule, outputs, batch: dict, batch_idx: int
    ) -> None:
        if batch.get("micro_step", 0) != 0:
            return  # the table is logged once per generation, at the step it was sampled for
        step = self._generation_step  # the optimizer step has already advanced global_step
        due = self.log_every and step % self.log_every == 0
        if due and self.scored is not None and self.scored.examples:
            columns, rows = completions_table(self.scored, self.num_samples_to_log)
            log_table(trainer.loggers, "samples/completions", columns, rows, step)


def completions_table(rollout: Rollout, max_rows: int) -> tuple[list[str], list[list]]:
    """The first `max_rows` completions with their example, parse, every reward term and the advantage."""
    terms = sorted(rollout.reward_terms)
    columns = [
        "id",
        "task",
        "question",
        "choices",
        "gold",
        "completion",
        "mode",
        "answer",
        "reward",
        *terms,
        "advantage",
    ]
    rows = []
    for i in range(min(max_rows, rollout.size)):
        ex, done = rollout.example_of(i), rollout.completions[i]
        choices = " | ".join(lettered_options(ex.choices)) if ex.choices else ""
        gold = ex.answer_letter or ex.answer
        values = [float(rollout.reward_terms[name][i]) for name in terms]
        rows.append(
            [
                ex.id,
                ex.task,
                ex.question,
                choices,
                gold,
                done.text,
                done.mode,
                done.answer or "",
                float(rollout.rewards[i]),
                *values,
                float(rollout.advantages[i]),
            ]
        )
    return columns, rows
