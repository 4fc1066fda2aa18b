import math

import pytest
import torch

from audio_thinker.losses.advantages import group_advantages


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
    adv = group_advantages(rewards, group_size=2, scale=False)
    assert torch.equal(adv, torch.tensor([1.0, -1.0, -2.0, 2.0]))


def test_group_advantages_rejects_ragged_groups():
    with pytest.raises(ValueError, match="multiple of group_size=4"):
        group_advantages(torch.zeros(6), group_size=4)
