"""Audio-Thinker adaptive think-accuracy R_a, hand-computed from the paper's γ schedule."""

from __future__ import annotations

import math

import pytest

from audio_thinker.rewards.adaptive import AdaptiveThinkAccuracyReward, think_gammas

THINK_RIGHT = "<think>Bowed strings carry the tune.</think><answer>B</answer>"
THINK_WRONG = "<think>Hammered strings.</think><answer>A</answer>"
PLAIN_RIGHT = "<answer>violin</answer>"
PLAIN_WRONG = "<answer>drums</answer>"


def test_half_thinking_at_the_start(make_inputs, violin):
    inputs = make_inputs([THINK_RIGHT, THINK_WRONG, PLAIN_RIGHT, PLAIN_WRONG], violin, step=0, total_steps=10)
    # λ = 2/4, s/T = 0: γ_think = γ_nothink = e^-0.5 ≈ 0.606531
    g = math.exp(-0.5)
    expected = [g, -(1 - g), 2 * g, -g - 2 * (1 - g)]  # ≈ [0.606531, -0.393469, 1.213061, -1.393469]
    assert AdaptiveThinkAccuracyReward().score(inputs) == pytest.approx(expected)
    assert expected == pytest.approx([0.606531, -0.393469, 1.213061, -1.393469], abs=1e-6)


def test_mostly_thinking_half_way(make_inputs, violin):
    inputs = make_inputs([THINK_RIGHT, THINK_RIGHT, THINK_WRONG, PLAIN_RIGHT], violin, step=5, total_steps=10)
    # λ = 3/4, 1 - s/T = 1/2: γ_think = e^-0.375 ≈ 0.687289, γ_nothink = e^-0.125 ≈ 0.882497
    gt, gn = math.exp(-0.375), math.exp(-0.125)
    assert AdaptiveThinkAccuracyReward().score(inputs) == pytest.approx([gt, gt, -(1 - gt), 2 * gn])
    assert (gt, gn) == pytest.approx((0.687289, 0.882497), abs=1e-6)


@pytest.mark.parametrize("step", [10, 15])  # at and past T (clipped): γ = 1, the paper's base payoffs
def test_base_payoffs_at_the_end(make_inputs, violin, step):
    inputs = make_inputs([THINK_RIGHT, THINK_WRONG, PLAIN_RIGHT, PLAIN_WRONG], violin, step=step, total_steps=10)
    assert AdaptiveThinkAccuracyReward().score(inputs) == pytest.approx([1.0, 0.0, 2.0, -1.0])


def test_all_thinking(make_inputs, violin):
    inputs = make_inputs([THINK_RIGHT, THINK_WRONG], violin, step=0, total_steps=4)
    # λ = 1: γ_think = e^-1 ≈ 0.367879 (thinking is common, so it pays less)
    g = math.exp(-1)
    assert AdaptiveThinkAccuracyReward().score(inputs) == pytest.approx([g, -(1 - g)])
    assert think_gammas(1.0, 0, 4) == pytest.approx((g, 1.0))  # γ_nothink = e^0


def test_malformed_is_a_wrong_no_think_even_when_right(make_inputs, violin):
    # The malformed one names the right option, but text sits outside the tags.
    inputs = make_inputs([THINK_RIGHT, "The violin. <answer>B</answer>"], violin, step=0, total_steps=10)
    # λ = 1/2 (malformed counts in N, not as thinking): γ = e^-0.5; malformed -> -γ - 2(1 - γ) ≈ -1.393469
    g = math.exp(-0.5)
    assert AdaptiveThinkAccuracyReward().score(inputs) == pytest.approx([g, -g - 2 * (1 - g)])


def test_blank_think_counts_as_no_think(make_inputs, violin):
    inputs = make_inputs(["<think> </think><answer>B</answer>"], violin, step=0, total_steps=10)
    # λ = 0: γ_nothink = e^-1; correct no-think -> 2 e^-1 ≈ 0.735759
    assert AdaptiveThinkAccuracyReward().score(inputs) == pytest.approx([2 * math.exp(-1)])


def test_empty_answer_is_wrong(make_inputs, violin):
    inputs = make_inputs(["<answer></answer>"], violin, step=1, total_steps=1)
    assert AdaptiveThinkAccuracyReward().score(inputs) == pytest.approx([-1.0])


def test_total_steps_must_be_positive(make_inputs, violin):
    with pytest.raises(ValueError, match="total_steps"):
        AdaptiveThinkAccuracyReward().score(make_inputs([PLAIN_RIGHT], violin, total_steps=0))


def test_step_wide_think_share_overrides_the_local_one(make_inputs, violin):
    """Under data parallelism λ is the share over every rank's completions, passed in by the reward callback."""
    inputs = make_inputs([THINK_RIGHT, PLAIN_RIGHT], violin, step=0, total_steps=10)  # local λ would be 1/2
    inputs.batch_think_share = 0.25
    # λ = 1/4, s/T = 0: γ_think = e^-0.25 ≈ 0.778801, γ_nothink = e^-0.75 ≈ 0.472367
    gt, gn = math.exp(-0.25), math.exp(-0.75)
    assert AdaptiveThinkAccuracyReward().score(inputs) == pytest.approx([gt, 2 * gn])


def test_unbounded_training_has_no_schedule(make_inputs, violin):
    with pytest.raises(ValueError, match="trainer.max_steps"):
        AdaptiveThinkAccuracyReward().score(make_inputs([THINK_RIGHT], violin, total_steps=0))
