"""Group-relative advantages: each completion is scored against the other samples of its own prompt."""

from __future__ import annotations

from typing import Literal

import torch

ScaleRewards = Literal["group", "batch", "none"]
SCALE_REWARDS = ("group", "batch", "none")


def scale_rewards_mode(value: str) -> ScaleRewards:
    """`loss.scale_rewards`, checked to be one of group | batch | none."""
    if value not in SCALE_REWARDS:
        raise ValueError(f"loss.scale_rewards must be one of {', '.join(SCALE_REWARDS)}; got {value!r}")
    return value


def group_advantages(
    rewards: torch.Tensor,
    group_size: int,
    scale: ScaleRewards = "group",
    eps: float = 1e-4,
    batch_std: float | None = None,
) -> torch.Tensor:
    """A_i = (r_i - mean_G) / (std + eps), with std chosen by `scale`:

    - `group`: the std of the completion's own group (GRPO, DeepSeekMath); a group whose rewards are all equal
      gets zero advantage: it carries no signal.
    - `batch`: one std over the whole step's rewards (all ranks): `batch_std`, or these rewards' std if None.
    - `none`: no division, A_i = r_i - mean_G (Dr. GRPO).

    `rewards` is [B*G] with the G samples of each prompt adjacent. stds are unbiased sample stds, as in TRL.
    """
    scale = scale_rewards_mode(scale)
    if rewards.ndim != 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards must be 1-D with a multiple of group_size={group_size} items, got {rewards.shape}")
    grouped = rewards.view(-1, group_size)  # [B, G]
    centered = grouped - grouped.mean(dim=1, keepdim=True)
    if scale == "group" and group_size > 1:
        std = grouped.std(dim=1, keepdim=True)
        centered = torch.where(std > 0, centered / (std + eps), torch.zeros_like(centered))
    elif scale == "batch":
        std = batch_std if batch_std is not None else (rewards.std().item() if rewards.numel() > 1 else 0.0)
        centered = centered / (std + eps)
    return centered.flatten()  # [B*G]


def std_from_sums(count: float, total: float, total_sq: float) -> float:
    """The unbiased sample std of values known by their count, sum and sum of squares (summed across ranks)."""
    if count < 2:
        return 0.0
    variance = (total_sq - total * total / count) / (count - 1)
    return max(variance, 0.0) ** 0.5
