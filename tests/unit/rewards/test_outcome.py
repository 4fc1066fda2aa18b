"""Outcome rewards: accuracy and the two format requirements."""

from __future__ import annotations

import pytest

from audio_thinker.rewards.outcome import FormatReward

CASES = [
    ("<think>The second tone is higher.</think><answer>B</answer>", 1.0, 1.0),
    ("<answer>B</answer>", 0.0, 1.0),
    ("<think> </think><answer>B</answer>", 0.0, 1.0),  # blank reasoning is not reasoning: CESAR pays nothing
    ("<think>x</think>B", 0.0, 0.0),
    ("<answer>A</answer><answer>B</answer>", 0.0, 0.0),
]


@pytest.mark.parametrize(("text", "think_required", "either"), CASES)
def test_format_requirements(make_inputs, violin, text, think_required, either):
    inputs = make_inputs([text], violin)
    assert FormatReward(require="think").score(inputs) == [think_required]
    assert FormatReward(require="either").score(inputs) == [either]


def test_unknown_requirement_names_the_field():
    with pytest.raises(ValueError, match="FormatReward.require"):
        FormatReward(require="strict")
