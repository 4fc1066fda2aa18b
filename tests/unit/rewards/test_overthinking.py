"""CESAR overthinking: clip(1 − |t|/L_max, 0, 1) on the policy tokenizer's think lengths."""

from __future__ import annotations

import pytest

from audio_thinker.rewards.overthinking import OverthinkingReward

THINK = "<think>The violin carries the tune.</think><answer>B</answer>"


def test_values_use_token_lengths_not_text(make_inputs, violin):
    # The same text with four token counts: 1 - 64/256, 1 - 1/256, exactly L_max, beyond L_max (clipped, not -0.17)
    inputs = make_inputs([THINK] * 4, violin, think_lengths=[64, 1, 256, 300])
    assert OverthinkingReward(l_max=256).score(inputs) == pytest.approx([0.75, 255 / 256, 0.0, 0.0])


def test_l_max_is_configurable(make_inputs, violin):
    inputs = make_inputs([THINK], violin, think_lengths=[10])
    assert OverthinkingReward(l_max=40).score(inputs) == pytest.approx([0.75])  # 1 - 10/40


@pytest.mark.parametrize(
    "text", ["<answer>B</answer>", "<think>  </think><answer>B</answer>", "<think>tune</think>?<answer>B</answer>"]
)
def test_no_valid_reasoning_pays_nothing(make_inputs, violin, text):
    # |t| = 0 would pay the maximum 1 for skipping reasoning; CESAR requires a think block, so 0
    assert OverthinkingReward().score(make_inputs([text], violin, think_lengths=[0])) == [0.0]


def test_l_max_must_be_positive():
    with pytest.raises(ValueError, match="l_max"):
        OverthinkingReward(l_max=0)
