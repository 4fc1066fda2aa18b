"""Combiners: the NaN-aware weighted sum and Audio-Thinker's product form, hand-computed."""

from __future__ import annotations

import math

import pytest
import torch

from audio_thinker.rewards.adaptive import AdaptiveThinkAccuracyReward
from audio_thinker.rewards.base import RewardInputs, RewardTerm
from audio_thinker.rewards.combiners import AudioThinkerCombiner, WeightedSum
from audio_thinker.rewards.outcome import FormatReward
from audio_thinker.rewards.suite import RewardError, RewardSuite

NAN = float("nan")


def tensors(**values: list[float]) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v) for k, v in values.items()}


def test_weighted_sum_skips_nan():
    values = tensors(a=[1.0, NAN, NAN], b=[2.0, 3.0, NAN])
    # [5·1 + 2, 3 (a not applicable), 0 (nothing applicable)]
    assert WeightedSum()(values, {"a": 5.0, "b": 1.0}).tolist() == [7.0, 3.0, 0.0]


AT = dict(
    adaptive_think_accuracy=[0.6, -0.4, 1.2, -1.4],
    judge_consistency=[1.0, NAN, 0.0, NAN],  # NaN: wrong answers get no consistency bonus
    format=[1.0, 1.0, 1.0, 0.0],
    judge_think=[0.7, 0.3, 0.5, 0.0],
)
ONES = {k: 1.0 for k in AT}


def test_audio_thinker_product_form():
    total = AudioThinkerCombiner()(tensors(**AT), ONES)
    # R = R_a (1 + 0.5 R_c) + 0.5 R_f + R_t:
    #   0.6·1.5 + 0.5 + 0.7 = 2.1;  -0.4·1 + 0.5 + 0.3 = 0.4;  1.2·1 + 0.5 + 0.5 = 2.2;  -1.4 + 0 + 0 = -1.4
    assert total.tolist() == pytest.approx([2.1, 0.4, 2.2, -1.4])


def test_term_weights_multiply_the_coefficients():
    weights = {**ONES, "judge_think": 0.0, "judge_consistency": 2.0}
    total = AudioThinkerCombiner()(tensors(**AT), weights)
    # R_t off; c_c·w_c = 0.5·2 = 1:  0.6·2 + 0.5 = 1.7;  -0.4 + 0.5 = 0.1;  1.2·1 + 0.5 = 1.7;  -1.4
    assert total.tolist() == pytest.approx([1.7, 0.1, 1.7, -1.4])


def test_missing_optional_terms_count_as_zero():
    values = tensors(adaptive_think_accuracy=AT["adaptive_think_accuracy"], format=AT["format"])
    # R = R_a + 0.5 R_f: [1.1, 0.1, 1.7, -1.4]
    total = AudioThinkerCombiner()(values, {"adaptive_think_accuracy": 1.0, "format": 1.0})
    assert total.tolist() == pytest.approx([1.1, 0.1, 1.7, -1.4])


def test_unnamed_terms_are_added_with_their_weight():
    values = tensors(**AT, bonus=[1.0, NAN, 2.0, 0.0])
    total = AudioThinkerCombiner()(values, {**ONES, "bonus": 2.0})
    assert total.tolist() == pytest.approx([2.1 + 2.0, 0.4, 2.2 + 4.0, -1.4])


def test_custom_keys_and_coefficients():
    combine = AudioThinkerCombiner(accuracy_key="acc", consistency_key="cons", consistency_coef=1.0, format_coef=0.0)
    values = tensors(acc=[2.0], cons=[1.0], format=[1.0], judge_think=[0.5])
    # 2·(1 + 1·1) + 0·1 + 0.5 = 4.5
    assert combine(values, {"acc": 1.0, "cons": 1.0, "format": 1.0, "judge_think": 1.0}).tolist() == [4.5]


def test_missing_accuracy_term_fails_with_a_hint():
    with pytest.raises(ValueError, match="adaptive_think_accuracy.*accuracy_key"):
        AudioThinkerCombiner()(tensors(format=[1.0]), {"format": 1.0})


def test_keys_must_be_distinct():
    with pytest.raises(ValueError, match="distinct"):
        AudioThinkerCombiner(think_key="format")


class Fixed(RewardTerm):
    """A term that returns given values (stands in for a judge in suite-level tests)."""

    def __init__(self, values: list[float | None], weight: float = 1.0) -> None:
        super().__init__(weight)
        self.values = values

    def score(self, inputs: RewardInputs) -> list[float | None]:
        return self.values


def test_through_a_suite(make_inputs, violin):
    inputs = make_inputs(
        ["<think>Bowed strings.</think><answer>B</answer>", "<answer>A</answer>"], violin, step=0, total_steps=10
    )
    suite = RewardSuite(
        {
            "adaptive_think_accuracy": AdaptiveThinkAccuracyReward(),
            "format": FormatReward(require="either"),
            "judge_consistency": Fixed([1.0, None]),
            "judge_think": Fixed([0.8, 0.8]),
        },
        AudioThinkerCombiner(),
    )
    result = suite(inputs)
    # λ = 1/2, γ = e^-0.5: R_a = [γ, -γ - 2(1 - γ)]; total = [1.5 γ + 0.5 + 0.8, R_a[1] + 0.5 + 0.8]
    g = math.exp(-0.5)
    assert result.total.tolist() == pytest.approx([1.5 * g + 1.3, -g - 2 * (1 - g) + 1.3])
    assert math.isnan(result.terms["judge_consistency"][1])  # kept NaN for logging, treated as 0 in the total


def test_infinity_is_not_hidden_by_the_product_form(make_inputs, violin):
    suite = RewardSuite(
        {"adaptive_think_accuracy": Fixed([1.0]), "judge_think": Fixed([float("inf")])}, AudioThinkerCombiner()
    )
    with pytest.raises(RewardError, match="violin-1"):
        suite(make_inputs(["<answer>B</answer>"], violin))
