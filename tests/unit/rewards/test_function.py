"""Plain functions as reward terms: TRL's signature, None as "not applicable", config keys as keyword arguments."""

from __future__ import annotations

import math

import pytest
from omegaconf import OmegaConf

from audio_thinker.example import AudioQAExample
from audio_thinker.format.parsing import parse_completion
from audio_thinker.rewards.base import RewardInputs
from audio_thinker.rewards.function import FunctionReward
from audio_thinker.rewards.suite import build_reward_suite, build_term


def brevity(completions, examples, limit: int = 20, **kwargs):
    """1 for a completion shorter than `limit` characters; None (not applicable) when it has no answer."""
    return [None if c.answer is None else float(len(c.text) < limit) for c in completions]


def _inputs() -> RewardInputs:
    ex = AudioQAExample(id="1", question="Which tone is higher?", answer="second", choices=["first", "second"])
    texts = ["<answer>B</answer>", "<think>" + "long " * 10 + "</think><answer>A</answer>", "no tags"]
    return RewardInputs([parse_completion(t) for t in texts], [ex] * 3, [0, 10, 0], [1, 1, 0], group_size=3)


def test_a_function_target_is_wrapped_with_its_weight_and_options():
    term = build_term("brevity", OmegaConf.create({"_target_": f"{__name__}.brevity", "weight": 0.5, "limit": 30}))
    assert isinstance(term, FunctionReward) and term.weight == 0.5 and term.options == {"limit": 30}
    values = term(_inputs())
    assert values[:2].tolist() == [1.0, 0.0] and math.isnan(values[2])  # None -> NaN


def test_a_suite_mixes_classes_and_functions():
    config = OmegaConf.create(
        {
            "_target_": "audio_thinker.rewards.suite.RewardSuite",
            "terms": {
                "accuracy": {"_target_": "audio_thinker.rewards.outcome.AccuracyReward"},
                "brevity": {"_target_": f"{__name__}.brevity", "weight": 2.0},
                "off": None,
            },
        }
    )
    suite = build_reward_suite(config)
    result = suite(_inputs())
    assert set(suite.terms) == {"accuracy", "brevity"}
    assert result.total.tolist() == [1.0 + 2.0, 0.0, 0.0]  # NaN terms are skipped by the weighted sum


def test_the_function_receives_trl_style_arguments():
    seen = {}

    def spy(completions, examples, **kwargs):
        seen.update(kwargs, n=len(completions), first=examples[0].id)
        return [0.0] * len(completions)

    FunctionReward(spy, extra="x")(_inputs())
    assert seen["n"] == 3 and seen["first"] == "1" and seen["extra"] == "x"
    assert seen["think_lengths"] == [0, 10, 0] and seen["group_size"] == 3 and "step" in seen


def test_a_term_without_target_names_itself():
    with pytest.raises(ValueError, match="reward.terms.mine has no _target_"):
        build_term("mine", OmegaConf.create({"weight": 1.0}))
