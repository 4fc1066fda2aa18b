"""Group-relative advantages: each completion is scored against the other samples of its own prompt."""

from __future__ import annotations

import torch


def group_advantages(rewards: torch.Tensor, group_size: int, scale: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """A_i = (r_i - mean_G) / (std_G + eps), or r_i - mean_G when `scale` is False (Dr. GRPO).

    `rewards` is [B*G] with the G samples of each prompt adjacent. std is the unbiased sample std, as in
    DeepSeekMath and TRL. A group whose rewards are all equal gets zero advantage: it carries no signal.
    """
    if rewards.ndim != 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards must be 1-D with a multiple of group_size={group_size} items, got {rewards.shape}")
    grouped = rewards.view(-1, group_size)  # [B, G]
    centered = grouped - grouped.mean(dim=1, keepdim=True)
    if scale and group_size > 1:
        std = grouped.std(dim=1, keepdim=True)
        centered = torch.where(std > 0, centered / (std + eps), torch.zeros_like(centered))
    return centered.flatten()  # [B*G]
