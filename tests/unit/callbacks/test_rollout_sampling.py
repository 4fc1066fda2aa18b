"""RolloutCallback: its settings checked at construction, the completions table it logs, and one generation's chain
(sample, score, hand over) on the embedded model."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from audio_thinker.callbacks.reward import RewardCallback
from audio_thinker.callbacks.rollout_sampling import RolloutCallback, completions_table
from audio_thinker.data.datamodule import AudioQADataModule
from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.format.prompts import THINK
from audio_thinker.losses.grpo import GRPOLoss
from audio_thinker.models.loading import load_policy
from audio_thinker.module import GRPOModule
from audio_thinker.rewards.suite import RewardSuite
from tests.helpers.loggers import RecordingLogger
from tests.helpers.rewards import TextLengthReward
from tests.helpers.rollouts import make_rollout


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"group_size": 1}, "group_size must be >= 2"),
        ({"num_iterations": 0}, "num_iterations and rollout.steps_per_generation must be >= 1"),
        ({"generation_kwargs": {"repetition_penaltyy": 1.1}}, "repetition_penaltyy"),
        ({"engine": "sglang"}, "rollout.engine must be one of hf, vllm"),
    ],
)
def test_settings_that_cannot_work_are_refused_when_the_callback_is_built(settings, message):
    with pytest.raises(ValueError, match=message):
        RolloutCallback(THINK, **settings)


def test_the_completions_table_shows_each_completion_with_its_rewards_and_advantage():
    rollout = make_rollout([2, 1, 1, 3], advantages=[0.5, -0.5, 1.0, -1.0])
    columns, rows = completions_table(rollout, max_rows=3)
    assert columns[-3:] == ["reward", "term", "advantage"] and len(rows) == 3
    first = dict(zip(columns, rows[0], strict=True))
    assert first["id"] == "q0" and first["choices"] == "A. a | B. b" and first["gold"] == "A"
    assert (first["mode"], first["answer"], first["advantage"]) == ("no_think", "b", 0.5)
    assert dict(zip(columns, rows[2], strict=True))["id"] == "q1"  # the third completion answers the second example


def test_skip_counts_survive_a_checkpoint():
    callback = RolloutCallback(THINK)
    callback.skips.record(3, [])
    restored = RolloutCallback(THINK)
    restored.load_state_dict(callback.state_dict())
    assert restored.skips.state_dict() == callback.skips.state_dict()


def test_a_generations_scalars_survive_a_checkpoint_taken_inside_it():
    callback = RolloutCallback(THINK)
    callback.skips.record(2, [])
    callback.step_metrics = {**callback.skips.metrics(), "rollout/sync_seconds": 0.25}
    restored = RolloutCallback(THINK)
    restored.load_state_dict(callback.state_dict())
    assert restored.step_metrics == {"data/skipped": 0.0, "rollout/sync_seconds": 0.25}
    older = RolloutCallback(THINK)  # a checkpoint from before the scalars were kept: the skip counts at least
    older.load_state_dict({"skips": callback.skips.state_dict()})
    assert older.step_metrics == {"data/skipped": 0.0}


class Recording:
    """A scorer that keeps what it was given and what it returned, scoring through a `RewardCallback`."""

    def __init__(self, reward: RewardCallback) -> None:
        self.reward, self.given, self.returned = reward, [], []

    def score(self, rollout, trainer):
        self.given.append(rollout)
        self.returned.append(self.reward.score(rollout, trainer))
        return self.returned[-1]


@pytest.mark.parametrize("num_iterations, steps_per_generation", [(1, 1), (2, 1), (1, 2)])
def test_one_generation_is_sampled_scored_and_handed_to_the_module(num_iterations, steps_per_generation):
    """The chain of one generation: sample -> (old log-probs) -> scorer -> module.start_generation. A generation
    that outlives its first optimizer step keeps its sampling-time log-probs for the ratio (as TRL)."""
    torch.manual_seed(0)
    module = GRPOModule(load_policy("tiny-qwen2-audio"), GRPOLoss(beta=0.0), torch.optim.SGD)
    reward = RewardCallback(RewardSuite({"length": TextLengthReward()}))
    scorer = Recording(reward)
    sampling = RolloutCallback(
        THINK,
        group_size=2,
        max_new_tokens=4,
        num_iterations=num_iterations,
        steps_per_generation=steps_per_generation,
        scorer=scorer,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        callbacks=[sampling, reward],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    data = AudioQADataModule(SyntheticAudioQA(size=2 * steps_per_generation), batch_size=2)
    trainer.fit(module, datamodule=data)
    (given,), (returned,) = scorer.given, scorer.returned
    assert given.advantages is None and returned.advantages is not None  # scored: a new value, the sampled kept
    assert module.generation is returned and sampling.scored is returned  # one writer, one value handed over
    assert (given.old_logps is not None) == (num_iterations * steps_per_generation > 1)  # before scoring
    assert reward.last_metrics["reward/total"] == pytest.approx(float(returned.rewards.mean()))


def test_a_generation_of_two_steps_writes_its_scalars_at_both_steps():
    """Skip counts, sync time and rewards are sampled once per generation and hold for each of its steps."""
    torch.manual_seed(0)
    module = GRPOModule(load_policy("tiny-qwen2-audio"), GRPOLoss(beta=0.0), torch.optim.SGD)
    reward = RewardCallback(RewardSuite({"length": TextLengthReward()}))
    scorer = Recording(reward)
    sampling = RolloutCallback(THINK, group_size=2, max_new_tokens=4, steps_per_generation=2, scorer=scorer)
    logger = RecordingLogger()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2,
        callbacks=[sampling, reward],
        logger=logger,
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(module, datamodule=AudioQADataModule(SyntheticAudioQA(size=4), batch_size=2))
    assert len(scorer.given) == 1  # one generation for both steps
    for tag in ("data/skipped", "rollout/sync_seconds", "reward/total"):
        points = [(step, m[tag]) for step, m in logger.calls if tag in m]
        assert [step for step, _ in points] == [0, 1], tag  # at each step, once
        assert points[0][1] == points[1][1], tag  # the generation's value both times
    assert [step for step, m in logger.calls if "loss/total" in m] == [0, 1]


def test_a_callback_without_a_scorer_says_how_to_get_one():
    with pytest.raises(TypeError, match="RolloutCallback has no scorer: build the trainer with"):
        RolloutCallback(THINK).setup(None, None, "fit")
