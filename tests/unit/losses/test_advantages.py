import math

import pytest
import torch

from audio_thinker.losses.advantages import group_advantages, scale_rewards_mode, std_from_sums


def test_group_advantages_hand_computed():
    # Group 1: rewards 1, 0, 0, 1 -> mean 0.5, unbiased std sqrt((4 * 0.25) / 3) = 0.57735
    # Group 2: rewards 2, 2, 2, 2 -> no signal, all zero.
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    adv = group_advantages(rewards, group_size=4, eps=0.0)
    expected = 0.5 / math.sqrt(1 / 3)
    assert torch.allclose(adv[:4], torch.tensor([expected, -expected, -expected, expected]), atol=1e-5)
    assert torch.equal(adv[4:], torch.zeros(4))


def test_group_advantages_unscaled_is_mean_centered():
    rewards = torch.tensor([3.0, 1.0, 0.0, 4.0])  # groups of 2: means 2 and 2
    adv = group_advantages(rewards, group_size=2, scale="none")
    assert torch.equal(adv, torch.tensor([1.0, -1.0, -2.0, 2.0]))


def test_group_advantages_rejects_ragged_groups():
    with pytest.raises(ValueError, match="multiple of group_size=4"):
        group_advantages(torch.zeros(6), group_size=4)


def test_scale_rewards_batch_divides_by_one_std_over_the_step():
    # Groups of 2: [1, 3] and [0, 0]. Centered: [-1, 1, 0, 0]; the batch std of [1, 3, 0, 0] is
    # sqrt(((1-1)^2 + (3-1)^2 + 1 + 1) / 3) = sqrt(2); the all-equal group stays 0 without a division by its 0 std.
    rewards = torch.tensor([1.0, 3.0, 0.0, 0.0])
    adv = group_advantages(rewards, group_size=2, scale="batch", eps=0.0)
    s = math.sqrt(2)
    assert torch.allclose(adv, torch.tensor([-1 / s, 1 / s, 0.0, 0.0]))
    # The std of the whole step (all ranks) is passed in: here 2.0.
    given = group_advantages(rewards, 2, "batch", eps=0.0, batch_std=2.0)
    assert torch.allclose(given, torch.tensor([-0.5, 0.5, 0, 0]))


def test_std_from_sums_is_the_unbiased_std():
    values = torch.tensor([1.0, 3.0, 0.0, 0.0, 7.5])
    got = std_from_sums(len(values), values.sum().item(), (values**2).sum().item())
    assert got == pytest.approx(values.std().item(), rel=1e-6)
    assert std_from_sums(1, 2.0, 4.0) == 0.0


def test_scale_rewards_modes():
    assert [scale_rewards_mode(mode) for mode in ("group", "batch", "none")] == ["group", "batch", "none"]
    for bad in ("std", True):  # true/false no longer stand for group/none
        with pytest.raises(ValueError, match="loss.scale_rewards must be one of group, batch, none"):
            scale_rewards_mode(bad)
