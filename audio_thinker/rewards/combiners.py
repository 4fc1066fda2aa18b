"""Combiners: how a suite's per-term values [N] become one reward per completion.

A combiner is called as `combiner(values, weights)` with `values[key]` a float tensor [N] (NaN = not applicable)
and `weights[key]` the term's configured weight. Configs name them as `audio_thinker.rewards.combiners.<Name>`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


class WeightedSum:
    """total = Σ_k w_k r_k, skipping terms that are NaN (not applicable) for a completion; all-NaN gives 0."""

    def __call__(self, values: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
        stacked = torch.stack([values[k] * weights[k] for k in values])  # [K, N]
        return torch.nansum(stacked, dim=0)


class AudioThinkerCombiner:
    """R = w_a·R_a·(1 + c_c·w_c·R_c) + c_f·w_f·R_f + c_t·w_t·R_t + Σ_other w_k·r_k (Audio-Thinker, Wu et al.).

    The paper's total is R_a(1 + 0.5 R_c) + 0.5 R_f + R_t: the coefficients c_* are the paper's constants, and
    each term's own `weight` (w_*, 1.0 in `configs/reward/audio_thinker.yaml`) multiplies on top, so
    `reward.terms.judge_think.weight=0` ablates a term the same way it does under `WeightedSum`.
    NaN means "not applicable" and contributes nothing: R_c is NaN for wrong answers, which therefore get no
    consistency bonus (1 + 0), and a NaN R_a, R_f or R_t adds 0. A missing optional term (R_c, R_f, R_t removed
    with `~reward.terms.<key>`) is the same as NaN; a missing R_a is an error, because without it the product
    form has nothing to multiply. Terms the combiner does not name are added as w_k·r_k, NaN skipped.

    >>> combine = AudioThinkerCombiner()
    >>> values = {k: torch.tensor([v]) for k, v in
    ...     {"adaptive_think_accuracy": 2.0, "judge_consistency": 1.0, "format": 1.0, "judge_think": 0.5}.items()}
    >>> combine(values, {k: 1.0 for k in values}).tolist()  # 2·(1 + 0.5) + 0.5 + 0.5
    [4.0]
    """

    def __init__(
        self,
        accuracy_key: str = "adaptive_think_accuracy",
        consistency_key: str = "judge_consistency",
        format_key: str = "format",
        think_key: str = "judge_think",
        consistency_coef: float = 0.5,
        format_coef: float = 0.5,
        think_coef: float = 1.0,
    ) -> None:
        keys = [accuracy_key, consistency_key, format_key, think_key]
        if len(set(keys)) != len(keys):
            raise ValueError(f"AudioThinkerCombiner keys must be distinct, got {keys}")
        self.accuracy_key, self.consistency_key = accuracy_key, consistency_key
        self.format_key, self.think_key = format_key, think_key
        self.consistency_coef, self.format_coef, self.think_coef = consistency_coef, format_coef, think_coef

    def __call__(self, values: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
        if self.accuracy_key not in values:
            raise ValueError(
                f"AudioThinkerCombiner needs the term '{self.accuracy_key}' (R_a) but the suite has {sorted(values)}; "
                f"add it or set reward.combiner.accuracy_key to the key of your accuracy term"
            )

        def term(key: str) -> torch.Tensor:  # w_k·r_k with NaN/missing -> 0
            reference = values[self.accuracy_key]
            if key not in values:
                return torch.zeros_like(reference)
            weighted = values[key] * weights[key]  # [N]
            # Only NaN means "not applicable"; inf passes through so the suite's finiteness check still fires.
            return torch.where(torch.isnan(weighted), torch.zeros_like(weighted), weighted)

        total = term(self.accuracy_key) * (1.0 + self.consistency_coef * term(self.consistency_key))
        total = total + self.format_coef * term(self.format_key) + self.think_coef * term(self.think_key)
        named = {self.accuracy_key, self.consistency_key, self.format_key, self.think_key}
        for key in values:
            if key not in named:
                total = total + term(key)
        return total  # [N]
