"""The GRPO objective: a clipped importance-ratio surrogate plus a k3 KL penalty to the reference policy."""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import nn

Aggregation = Literal["grpo", "dapo", "dr_grpo"]


class GRPOLossOutput(NamedTuple):
    """The loss to backpropagate and the detached statistics worth logging."""

    loss: torch.Tensor
    policy_loss: torch.Tensor
    kl: torch.Tensor
    clip_fraction: torch.Tensor
    ratio_mean: torch.Tensor


class GRPOLoss(nn.Module):
    """Per token t of completion i (A_i its advantage, ρ = exp(logπ - logπ_old)):

        ℓ_it = -min(ρ A_i, clip(ρ, 1-ε_low, 1+ε_high) A_i) + β · (exp(logπ_ref - logπ) - (logπ_ref - logπ) - 1)

    The second term is the k3 estimator of KL(π || π_ref): unbiased, always ≥ 0. Aggregation over the masked
    tokens: `grpo` averages each sequence then the batch (DeepSeekMath); `dapo` averages all tokens of the
    batch (long answers weigh more); `dr_grpo` sums and divides by batch size x `max_completion_length`
    (no length bias at all). `scale_rewards` says whether advantages are divided by the group's reward std.
    """

    def __init__(
        self,
        beta: float = 0.04,
        epsilon: float = 0.2,
        epsilon_high: float | None = None,
        aggregation: Aggregation = "grpo",
        max_completion_length: int | None = None,
        scale_rewards: bool = True,
    ) -> None:
        super().__init__()
        if aggregation not in ("grpo", "dapo", "dr_grpo"):
            raise ValueError(f"loss.aggregation must be grpo, dapo or dr_grpo, got {aggregation!r}")
        if aggregation == "dr_grpo" and not max_completion_length:
            raise ValueError("loss.aggregation=dr_grpo needs loss.max_completion_length (the generation budget)")
        if beta < 0 or epsilon < 0:
            raise ValueError(f"loss.beta and loss.epsilon must be >= 0, got {beta} and {epsilon}")
        self.beta, self.eps_low = beta, epsilon
        self.eps_high = epsilon if epsilon_high is None else epsilon_high
        self.aggregation, self.max_completion_length = aggregation, max_completion_length
        # How rewards become advantages is part of the objective: GRPO divides by the group std, Dr. GRPO does not.
        # The reward callback reads it from here, so `loss=dr_grpo` is the whole of Dr. GRPO.
        self.scale_rewards = scale_rewards

    def forward(
        self,
        logps: torch.Tensor,  # [N, T] policy log-probs of the sampled tokens (with grad)
        advantages: torch.Tensor,  # [N]
        mask: torch.Tensor,  # [N, T] 1 on completion tokens, 0 on padding
        old_logps: torch.Tensor | None = None,  # [N, T] at sampling time; None: rollout not reused, ρ = 1
        ref_logps: torch.Tensor | None = None,  # [N, T]; needed when beta > 0
    ) -> GRPOLossOutput:
        mask = mask.to(logps.dtype)
        old = logps.detach() if old_logps is None else old_logps
        ratio = torch.exp(logps - old)  # [N, T]
        adv = advantages.to(logps.dtype).unsqueeze(1)  # [N, 1]
        unclipped = ratio * adv
        clipped = torch.clamp(ratio, 1 - self.eps_low, 1 + self.eps_high) * adv
        per_token = -torch.min(unclipped, clipped)  # [N, T]
        policy_loss = self._aggregate(per_token, mask)

        kl = torch.zeros((), dtype=logps.dtype, device=logps.device)
        if self.beta > 0:
            if ref_logps is None:
                raise ValueError("GRPOLoss with beta > 0 needs ref_logps")
            delta = ref_logps - logps
            kl_per_token = torch.exp(delta) - delta - 1  # [N, T]
            kl = self._aggregate(kl_per_token, mask)
            per_token = per_token + self.beta * kl_per_token
        loss = self._aggregate(per_token, mask)

        with torch.no_grad():
            tokens = mask.sum().clamp(min=1)
            clip_fraction = ((clipped < unclipped).to(mask.dtype) * mask).sum() / tokens
            ratio_mean = (ratio * mask).sum() / tokens
        return GRPOLossOutput(loss, policy_loss.detach(), kl.detach(), clip_fraction, ratio_mean)

    def _aggregate(self, per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Reduce [N, T] to a scalar following `self.aggregation`."""
        masked = per_token * mask
        if self.aggregation == "grpo":
            return (masked.sum(dim=1) / mask.sum(dim=1).clamp(min=1)).mean()
        if self.aggregation == "dapo":
            return masked.sum() / mask.sum().clamp(min=1)
        return masked.sum() / (per_token.shape[0] * self.max_completion_length)
