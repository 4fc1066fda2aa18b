"""The GRPO objective: a clipped importance-ratio surrogate plus a KL penalty to the reference policy."""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import nn

from audio_thinker.losses.sampler_correction import SamplerCorrection

Aggregation = Literal["grpo", "bnpo", "dapo", "dr_grpo"]
ImportanceLevel = Literal["token", "sequence", "sequence_token"]
KLEstimator = Literal["k1", "k2", "k3"]
AGGREGATIONS = ("grpo", "bnpo", "dapo", "dr_grpo")
IMPORTANCE_LEVELS = ("token", "sequence", "sequence_token")
KL_ESTIMATORS = ("k1", "k2", "k3")


class GRPOLossOutput(NamedTuple):
    """The loss to backpropagate and the detached statistics worth logging."""

    loss: torch.Tensor
    policy_loss: torch.Tensor
    kl: torch.Tensor
    clip_fraction: torch.Tensor
    ratio_mean: torch.Tensor


class GRPOLoss(nn.Module):
    """Per token t of completion i (A_i its advantage, ρ the importance ratio π_θ / π_old):

        ℓ_it = -min(ρ A_i, clip(ρ, 1-ε_low, 1+ε_high) A_i) + β · KL_it

    Importance ratio (`importance_sampling_level`):
        token           ρ_it = exp(logπ_it - logπ_old,it)                      (GRPO, PPO)
        sequence        ρ_i  = exp(mean_t (logπ_it - logπ_old,it)), same for every token of i   (GSPO)
        sequence_token  ρ_it = sg[ρ_i] · exp(logπ_it - sg[logπ_it])            (GSPO-token: ρ_i's value,
                        token-level gradients)
    KL estimator with δ = logπ_ref - logπ (Schulman's k1/k2/k3; k3 unbiased and ≥ 0):
        k1 = -δ     k2 = δ² / 2     k3 = exp(δ) - δ - 1
    `kl_bias_correction` multiplies the KL term by ρ (DeepSeek-V3.2; TRL's `use_bias_correction_kl`): the samples
    come from π_old, so weighting by π_θ / π_old makes the estimate one of KL(π_θ || π_ref).
    `sampler_weights` w_it (`sampler_correction`: π_old / π_sampler, bounded) multiply the clipped term, not the KL,
    when another engine sampled the tokens: ℓ_it = -w_it min(...) + β · KL_it (as TRL).

    Aggregation of the masked per-token values ℓ_it (m_it the completion mask) into the micro-batch's loss:
        grpo     mean_i (Σ_t m ℓ / Σ_t m)                       per sequence, then batch mean (DeepSeekMath)
        bnpo     Σ m ℓ / Σ m                                    tokens of this micro-batch (TRL's `bnpo`)
        dapo     Σ m ℓ / num_tokens                             tokens of the whole optimizer step, all ranks:
                 the caller passes `num_tokens` = step tokens / (accumulation x world size), so that after
                 Lightning's 1/accumulation and DDP's 1/world averaging the gradient is that of Σ ℓ / step tokens
        dr_grpo  Σ m ℓ / (N x max_completion_length)            no length bias at all (Dr. GRPO)
    """

    def __init__(
        self,
        beta: float = 0.04,
        epsilon: float = 0.2,
        epsilon_high: float | None = None,
        aggregation: Aggregation = "grpo",
        max_completion_length: int | None = None,
        importance_sampling_level: ImportanceLevel = "token",
        kl_estimator: KLEstimator = "k3",
        kl_bias_correction: bool = False,
        sampler_correction: SamplerCorrection | None = None,
    ) -> None:
        super().__init__()
        _check_choice("loss.aggregation", aggregation, AGGREGATIONS)
        _check_choice("loss.importance_sampling_level", importance_sampling_level, IMPORTANCE_LEVELS)
        _check_choice("loss.kl_estimator", kl_estimator, KL_ESTIMATORS)
        if aggregation == "dr_grpo" and not max_completion_length:
            raise ValueError("loss.aggregation=dr_grpo needs loss.max_completion_length (the generation budget)")
        if beta < 0 or epsilon < 0 or (epsilon_high is not None and epsilon_high < 0):
            raise ValueError(
                f"loss.beta, loss.epsilon and loss.epsilon_high must be >= 0, got {beta}, {epsilon}, {epsilon_high}"
            )
        self.beta, self.eps_low = beta, epsilon
        self.eps_high = epsilon if epsilon_high is None else epsilon_high
        self.aggregation, self.max_completion_length = aggregation, max_completion_length
        self.importance_sampling_level, self.kl_estimator = importance_sampling_level, kl_estimator
        self.kl_bias_correction = kl_bias_correction
        self.sampler_correction = sampler_correction or SamplerCorrection(enabled=False)

    def forward(
        self,
        logps: torch.Tensor,  # [N, T] policy log-probs of the sampled tokens (with grad)
        advantages: torch.Tensor,  # [N]
        mask: torch.Tensor,  # [N, T] 1 on completion tokens, 0 on padding
        old_logps: torch.Tensor | None = None,  # [N, T] at sampling time; None: rollout not reused, ρ = 1
        ref_logps: torch.Tensor | None = None,  # [N, T]; needed when beta > 0
        num_tokens: float | None = None,  # dapo's normaliser (see the class docstring); None: this batch's tokens
        sampler_weights: torch.Tensor | None = None,  # [N, T] π_old / π_sampler, bounded; None: the trainer sampled
    ) -> GRPOLossOutput:
        mask = mask.to(logps.dtype)
        ratio = self.importance_ratio(logps, logps.detach() if old_logps is None else old_logps, mask)  # [N, T]
        adv = advantages.to(logps.dtype).unsqueeze(1)  # [N, 1]
        unclipped = ratio * adv
        clipped = torch.clamp(ratio, 1 - self.eps_low, 1 + self.eps_high) * adv
        per_token = -torch.min(unclipped, clipped)  # [N, T]
        if sampler_weights is not None:
            per_token = per_token * sampler_weights.to(per_token.dtype)
        policy_loss = self._aggregate(per_token, mask, num_tokens)

        kl = torch.zeros((), dtype=logps.dtype, device=logps.device)
        if self.beta > 0:
            if ref_logps is None:
                raise ValueError("GRPOLoss with beta > 0 needs ref_logps")
            kl_per_token = self.kl_per_token(logps, ref_logps)  # [N, T]
            if self.kl_bias_correction:
                kl_per_token = kl_per_token * ratio
            kl = self._aggregate(kl_per_token, mask, num_tokens)
            per_token = per_token + self.beta * kl_per_token
        loss = self._aggregate(per_token, mask, num_tokens)

        with torch.no_grad():
            tokens = mask.sum().clamp(min=1)
            clip_fraction = ((clipped < unclipped).to(mask.dtype) * mask).sum() / tokens
            ratio_mean = (ratio * mask).sum() / tokens
        return GRPOLossOutput(loss, policy_loss.detach(), kl.detach(), clip_fraction, ratio_mean)

    def importance_ratio(self, logps: torch.Tensor, old_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ρ at `importance_sampling_level`: [N, T] (a sequence-level ratio repeated over its tokens)."""
        log_ratio = logps - old_logps  # [N, T]
        if self.importance_sampling_level == "token":
            return torch.exp(log_ratio)
        sequence = (log_ratio * mask).sum(dim=1, keepdim=True) / mask.sum(dim=1, keepdim=True).clamp(min=1)  # [N, 1]
        if self.importance_sampling_level == "sequence":
            return torch.exp(sequence).expand_as(logps)
        return torch.exp(sequence.detach() + logps - logps.detach())

    def kl_per_token(self, logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
        """The `kl_estimator` of KL(π_θ || π_ref) at each sampled token: [N, T]."""
        delta = ref_logps - logps
        if self.kl_estimator == "k1":
            return -delta
        if self.kl_estimator == "k2":
            return 0.5 * delta**2
        return torch.exp(delta) - delta - 1

    def _aggregate(self, per_token: torch.Tensor, mask: torch.Tensor, num_tokens: float | None) -> torch.Tensor:
        """Reduce [N, T] to a scalar following `self.aggregation`."""
        masked = per_token * mask
        if self.aggregation == "grpo":
            return (masked.sum(dim=1) / mask.sum(dim=1).clamp(min=1)).mean()
        if self.aggregation == "bnpo" or (self.aggregation == "dapo" and num_tokens is None):
            return masked.sum() / mask.sum().clamp(min=1)
        if self.aggregation == "dapo":
            return masked.sum() / max(num_tokens, 1e-8)
        return masked.sum() / (per_token.shape[0] * self.max_completion_length)


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")
