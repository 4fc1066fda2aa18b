"""Rollout engines: what samples the G completions of every prompt of a generation.

An engine takes one batched request (all prompts of the generation on this rank) and returns token ids, plus
sampling log-probs when it has them. The trainer keeps its own prompt encoding for the loss passes either way.
`hf` (the default) samples with our decode loop (`models.decode`) from the policy itself (or, with
`rollout.generation_weights=merged`, from a plain copy of its language model): audio encoded once per example,
each prompt prefilled once and its KV cache shared by the G samples. A server engine (vLLM) samples in another
process and needs the policy's weights after every optimizer step: `sync_weights`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from audio_thinker.models.decoding import Decoding
from audio_thinker.models.policy import Policy, PromptEncoding
from audio_thinker.rollout.generation_copy import GenerationCopy
from audio_thinker.rollout.generation_kwargs import hf_generation_kwargs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingSettings(Decoding):
    """How rollouts are sampled (`rollout.*` keys): always sampled, at most `max_new_tokens` tokens each."""

    do_sample: bool = True
    prefix: str = "rollout."
    max_new_tokens: int = 64
    min_new_tokens: int = 0  # > 0 forbids stopping earlier (fixed-length benchmarks)
    # More settings under the engine's own names (`rollout.generation_kwargs`, checked by the engine's class).
    generation_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.do_sample:
            raise ValueError("rollouts are sampled: GRPO compares G different completions of each prompt")
        if self.max_new_tokens < 1:
            raise ValueError(f"rollout.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(
                "0 <= rollout.min_new_tokens <= rollout.max_new_tokens must hold; got "
                f"min_new_tokens={self.min_new_tokens}, max_new_tokens={self.max_new_tokens}"
            )


@dataclass(frozen=True)
class GenerationRequest:
    """Every prompt of one generation on this rank, in every form an engine may want."""

    prompts: list[str]  # [B] chat-formatted prompt strings, ending with the assistant turn opener
    audios: list[np.ndarray] | None  # [B] waveforms at the processor's sampling rate; None for text policies
    encoding: PromptEncoding  # the policy's own encoding of the prompts (audio encoded once)
    group_size: int
    sampling: SamplingSettings


@dataclass(frozen=True)
class Completions:
    """What an engine returns: G completions per prompt, each prompt's samples adjacent."""

    ids: torch.Tensor  # [B*G, C] token ids, padded after the stop token
    logps: torch.Tensor | None = None  # [B*G, C] sampling log-probs, when the engine reports them


class RolloutEngine(ABC):
    """Samples completions for a generation's prompts; keeps its copy of the policy's weights current."""

    @classmethod
    def from_options(cls, server: dict, generation_weights: str = "policy") -> RolloutEngine:
        """The engine for `rollout.engine=<name>`; server engines read the `rollout.server` keys."""
        cls.check_generation_weights(generation_weights)
        return cls()

    @classmethod
    def check_generation_weights(cls, generation_weights: str) -> None:
        """An error for a `rollout.generation_weights` this engine cannot honour (a server samples merged weights
        already: it takes only the default)."""
        if generation_weights != "policy":
            raise ValueError(
                f"rollout.generation_weights={generation_weights}: only engine=hf samples from a copy of its own; "
                f"{cls.__name__} takes policy (the default)"
            )

    @classmethod
    def generation_kwargs(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """`rollout.generation_kwargs` under this engine's names; an error for a key it cannot honour."""
        if kwargs:
            raise ValueError(f"rollout.generation_kwargs: the {cls.__name__} engine takes none, got {sorted(kwargs)}")
        return {}

    @abstractmethod
    def generate(self, policy: Policy, request: GenerationRequest) -> Completions:
        """Sample `request.group_size` completions for each prompt."""

    def sync_weights(self, policy: Policy) -> None:  # noqa: B027 (optional hook, a no-op by default)
        """Make the engine sample from `policy`'s current weights (called before a generation after an update)."""

    def close(self) -> None:  # noqa: B027 (optional hook, a no-op by default)
        """Release what the engine holds (a server process, a connection); called when training ends."""


class HFEngine(RolloutEngine):
    """Our decode loop (`models.decode`) on the policy itself, or with `generation_weights="merged"` on a plain copy
    of its language model (adapters merged, NF4 dequantised; `rollout.generation_copy`), refreshed at every sync;
    the copy's sampling log-probs are reported for the loss's sampler correction."""

    WEIGHTS = ("policy", "merged")

    def __init__(self, generation_weights: str = "policy") -> None:
        self.check_generation_weights(generation_weights)
        self.merged = generation_weights == "merged"
        self.copy: GenerationCopy | None = None
        self._warned_no_logps = False

    @classmethod
    def from_options(cls, server: dict, generation_weights: str = "policy") -> HFEngine:
        return cls(generation_weights)

    @classmethod
    def check_generation_weights(cls, generation_weights: str) -> None:
        if generation_weights not in cls.WEIGHTS:
            raise ValueError(
                f"rollout.generation_weights must be one of {', '.join(cls.WEIGHTS)}; got {generation_weights!r}"
            )

    @classmethod
    def generation_kwargs(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        return hf_generation_kwargs(kwargs)

    def sync_weights(self, policy: Policy) -> None:
        """With merged weights: build the copy at the first sync, then refresh what training changed in place."""
        if not self.merged:
            return
        if self.copy is None:
            self.copy = GenerationCopy(policy)
        else:
            self.copy.refresh(policy)

    def generate(self, policy: Policy, request: GenerationRequest) -> Completions:
        sampling = request.sampling
        if self.merged and self.copy is None:
            self.sync_weights(policy)  # a caller that did not sync first still samples from current weights
        # The copy's rounded weights sample slightly off-policy: its log-probs let the loss correct for that.
        logps: list[torch.Tensor] | None = [] if self.merged else None
        ids = policy.generate(
            request.encoding,
            request.group_size,
            **({"lm": self.copy.lm} if self.merged else {}),  # decode on the copy; prompts still the policy's
            sampling_logps=logps,
            max_new_tokens=sampling.max_new_tokens,
            min_new_tokens=sampling.min_new_tokens or None,
            **sampling.generate_kwargs(),
            **sampling.generation_kwargs,
        )  # [B*G, C]
        if self.merged and not logps and not self._warned_no_logps:  # a setting our loop lacks ran `generate`
            log.warning(
                "rollout.generation_weights=merged: a sampling setting ran transformers generate, which reports no "
                "sampling log-probs; loss.sampler_correction cannot correct the copy's rounding for these rollouts"
            )
            self._warned_no_logps = True
        return Completions(ids, torch.stack(logps, dim=1).float() if logps else None)

    def close(self) -> None:
        self.copy = None  # the copy's memory goes back when training ends


def logprob_mismatch(trainer_logps: torch.Tensor, sampling_logps: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean |log π_trainer − log π_sampler| over completion tokens: the train–inference mismatch of an engine.

    >>> logprob_mismatch(torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -9.0]]), torch.tensor([[1, 0]]))
    0.5
    """
    gap = (trainer_logps - sampling_logps.to(trainer_logps)).abs().masked_fill(mask == 0, 0.0)  # [B*G, C]
    return float(gap.sum() / mask.sum().clamp(min=1))
