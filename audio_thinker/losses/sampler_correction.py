"""Importance sampling from the sampler to the trainer: the correction for a rollout engine whose numbers differ.

A server engine (vLLM: other kernels, another dtype, weights synced after the step) samples from π_sampler, close to
but not the trainer's π_old. GRPO's ratio π_θ / π_old assumes the samples came from π_old, so each token's policy
loss is weighted by w = π_old / π_sampler, computed from the log-probs the engine reports with its tokens and the
trainer's own at sampling time, and bounded (truncated, or masked when out of bounds) so that a few tokens the
sampler found unlikely cannot dominate the step (Yao et al., 2025, "Your efficient RL framework secretly brings you
off-policy RL training"; TRL's `vllm_importance_sampling_correction`). The weight carries no gradient.

Modes (TRL's names): `token_truncate` w_it = clamp(exp(Δ_it), clip_min, clip_max); `token_mask` w_it = exp(Δ_it),
or 0 outside [clip_min, clip_max]; `sequence_*` the same on exp(Σ_t Δ_it), one weight per completion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch

CorrectionMode = Literal["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"]
MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")


class CorrectionWeights(NamedTuple):
    """Per-token weights for the policy loss, and what to log about them."""

    weights: torch.Tensor  # [N, T] (a sequence weight repeated over its tokens), no gradient
    mean: float  # mean weight over completion tokens (over completions for sequence modes)
    clipped_fraction: float  # share of those whose raw ratio fell outside [clip_min, clip_max]


@dataclass(frozen=True)
class SamplerCorrection:
    """`loss.sampler_correction`: applied to every rollout whose engine reported its sampling log-probs."""

    enabled: bool = True
    mode: CorrectionMode = "token_truncate"
    clip_max: float | None = 3.0
    clip_min: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"loss.sampler_correction.mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        low, high = self.clip_min, self.clip_max
        if (low is not None and not low >= 0) or (high is not None and not high > 0):
            raise ValueError(
                f"loss.sampler_correction: clip_min must be >= 0 and clip_max > 0 (null: no bound); got {low}, {high}"
            )
        if low is not None and high is not None and low > high:
            raise ValueError(f"loss.sampler_correction.clip_min ({low}) is above clip_max ({high})")

    @torch.no_grad()
    def weights(
        self, trainer_logps: torch.Tensor, sampling_logps: torch.Tensor, mask: torch.Tensor
    ) -> CorrectionWeights:
        """w from the trainer's log-probs at sampling time and the sampler's, [N, T] each; `mask` [N, T] 1 on
        completion tokens. A token the sampler could not score (NaN) gets no correction (Δ = 0)."""
        mask = mask.to(trainer_logps.dtype)
        delta = torch.nan_to_num((trainer_logps - sampling_logps.to(trainer_logps)) * mask, nan=0.0)  # [N, T]
        if self.mode.startswith("sequence"):
            delta = delta.sum(dim=1, keepdim=True)  # [N, 1]
            counted = (mask.sum(dim=1, keepdim=True) > 0).to(mask.dtype)  # completions with a token
        else:
            counted = mask
        ratio = torch.exp(delta)
        low = -math.inf if self.clip_min is None else self.clip_min
        high = math.inf if self.clip_max is None else self.clip_max
        outside = (ratio < low) | (ratio > high)
        # An unset bound is infinite: nothing is truncated or masked on that side.
        truncate = self.mode.endswith("truncate")
        weights = ratio.clamp(min=low, max=high) if truncate else ratio.masked_fill(outside, 0.0)
        total = counted.sum().clamp(min=1)
        mean = float((weights * counted).sum() / total)
        clipped = float((outside.to(mask.dtype) * counted).sum() / total)
        return CorrectionWeights(weights.expand_as(mask), mean, clipped)
