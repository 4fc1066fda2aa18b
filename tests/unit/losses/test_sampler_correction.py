"""Importance weights from the sampler's log-probs to the trainer's, against values computed by hand."""

import math

import pytest
import torch

from audio_thinker.losses.grpo import GRPOLoss
from audio_thinker.losses.sampler_correction import SamplerCorrection

# Two completions of three tokens; the last token of the second is padding. Δ = trainer - sampler:
#   completion 0: Δ = log 2, log 0.5, log 4  -> ratios 2, 0.5, 4
#   completion 1: Δ = log 1.5, NaN (the sampler could not score it), (padding)
TRAINER = torch.tensor([[-1.0, -1.0, -1.0], [-2.0, -2.0, -2.0]])
SAMPLER = TRAINER - torch.tensor([[math.log(2.0), math.log(0.5), math.log(4.0)], [math.log(1.5), 0.0, 9.0]])
SAMPLER[1, 1] = float("nan")
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])


def test_token_truncate_caps_each_ratio_and_counts_the_capped_tokens():
    out = SamplerCorrection(mode="token_truncate", clip_max=3.0).weights(TRAINER, SAMPLER, MASK)
    # the NaN token gets ratio 1; padding gets 1 too but counts nowhere
    expected = torch.tensor([[2.0, 0.5, 3.0], [1.5, 1.0, 1.0]])
    assert torch.allclose(out.weights, expected)
    assert out.mean == pytest.approx((2 + 0.5 + 3 + 1.5 + 1) / 5)
    assert out.clipped_fraction == pytest.approx(1 / 5)


def test_token_mask_zeroes_ratios_out_of_bounds_on_both_sides():
    out = SamplerCorrection(mode="token_mask", clip_max=3.0, clip_min=0.6).weights(TRAINER, SAMPLER, MASK)
    assert torch.allclose(out.weights, torch.tensor([[2.0, 0.0, 0.0], [1.5, 1.0, 1.0]]))
    assert out.clipped_fraction == pytest.approx(2 / 5)


def test_sequence_modes_use_the_product_of_a_completions_ratios():
    # completion 0: 2 x 0.5 x 4 = 4; completion 1: 1.5 x 1 = 1.5 (padding excluded)
    truncated = SamplerCorrection(mode="sequence_truncate", clip_max=3.0).weights(TRAINER, SAMPLER, MASK)
    assert torch.allclose(truncated.weights, torch.tensor([[3.0] * 3, [1.5] * 3]))
    assert truncated.mean == pytest.approx((3.0 + 1.5) / 2) and truncated.clipped_fraction == pytest.approx(0.5)
    masked = SamplerCorrection(mode="sequence_mask", clip_max=3.0).weights(TRAINER, SAMPLER, MASK)
    assert torch.allclose(masked.weights, torch.tensor([[0.0] * 3, [1.5] * 3]))


def test_the_weights_multiply_the_policy_term_but_not_the_kl():
    # one token, ratio 1 (on-policy), A = 1, β = 0.1, δ = ref - π = log 2: k3 = 2 - log 2 - 1
    logps = torch.tensor([[0.0]], requires_grad=True)
    ref = torch.tensor([[math.log(2.0)]])
    weights = torch.tensor([[0.25]])
    out = GRPOLoss(beta=0.1)(logps, torch.tensor([1.0]), torch.ones(1, 1), ref_logps=ref, sampler_weights=weights)
    k3 = 2 - math.log(2) - 1
    assert out.policy_loss.item() == pytest.approx(-0.25)
    assert out.loss.item() == pytest.approx(-0.25 + 0.1 * k3, abs=1e-6)
    out.loss.backward()  # d/dπ of -w ρ A = -w A at ρ = 1; of β k3: β (1 - e^δ) = 0.1 x (1 - 2)
    assert logps.grad.item() == pytest.approx(-0.25 - 0.1, abs=1e-6)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"mode": "token"}, "mode must be one of token_truncate"),
        ({"clip_max": 0.0}, "clip_max > 0"),
        ({"clip_min": 2.0, "clip_max": 1.0}, "clip_min \\(2.0\\) is above clip_max"),
    ],
)
def test_bad_settings_name_their_key(settings, message):
    with pytest.raises(ValueError, match=message):
        SamplerCorrection(**settings)


def test_no_bounds_at_all_is_plain_importance_sampling():
    out = SamplerCorrection(mode="token_truncate", clip_max=None).weights(TRAINER, SAMPLER, MASK)
    assert torch.allclose(out.weights, torch.tensor([[2.0, 0.5, 4.0], [1.5, 1.0, 1.0]]))
    assert out.clipped_fraction == 0.0
