"""RolloutCallback without a training run: its settings checked at construction, the completions table it logs."""

from __future__ import annotations

import pytest

from audio_thinker.callbacks.rollout_sampling import RolloutCallback, completions_table
from audio_thinker.format.prompts import THINK
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
