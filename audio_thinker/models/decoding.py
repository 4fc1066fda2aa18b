"""How tokens are chosen when a policy generates: one declaration for rollouts, evaluation and budget forcing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decoding:
    """Greedy (default) or sampled with temperature / top-p / top-k, `num_samples` completions per prompt.

    `prefix` names the config node in error messages (`rollout.`, `eval.`), so a bad value points at its key.
    """

    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    num_samples: int = 1
    prefix: str = ""

    def __post_init__(self) -> None:
        p = self.prefix
        if self.num_samples < 1:
            raise ValueError(f"{p}num_samples must be >= 1, got {self.num_samples}")
        if self.num_samples > 1 and not self.do_sample:
            raise ValueError(
                f"greedy decoding gives the same completion every time: set {p}do_sample=true "
                f"to draw num_samples={self.num_samples} samples"
            )
        if self.do_sample and not self.temperature > 0:
            raise ValueError(f"{p}temperature must be > 0 when sampling, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"{p}top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"{p}top_k must be >= 0 (0: off), got {self.top_k}")

    def generate_kwargs(self) -> dict:
        """Keyword arguments for `generate` (sampling knobs only when sampling, so greedy stays warning-free)."""
        if not self.do_sample:
            return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k}
