"""A rollout: G sampled completions for each of B prompts, everything later passes need."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from audio_thinker.data.example import AudioQAExample
from audio_thinker.format.parsing import ParsedCompletion
from audio_thinker.models.policy import PromptEncoding


@dataclass
class RolloutBatch:
    """The sampled completions of one step, aligned as [B*G] with each prompt's G samples adjacent."""

    examples: list[AudioQAExample]  # [B]
    group_size: int
    encoding: PromptEncoding  # prompts [B, P] and their audio features, computed once
    completion_ids: torch.Tensor  # [B*G, C]
    completion_mask: torch.Tensor  # [B*G, C] 1 up to and including the stop token
    completions: list[ParsedCompletion]  # [B*G]
    think_lengths: list[int]  # [B*G] tokens inside <think>
    answer_lengths: list[int]  # [B*G] tokens inside <answer>
    temperature: float = 1.0
    old_logps: torch.Tensor | None = None  # [B*G, C] only when the rollout is reused (num_iterations > 1)
    rewards: torch.Tensor | None = None  # [B*G] combined reward
    reward_terms: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> [B*G], NaN = n/a
    advantages: torch.Tensor | None = None  # [B*G]

    @property
    def size(self) -> int:
        """Number of completions, B*G."""
        return self.completion_ids.shape[0]

    def example_of(self, index: int) -> AudioQAExample:
        """The example completion `index` answers."""
        return self.examples[index // self.group_size]

    def expanded_examples(self) -> list[AudioQAExample]:
        """Examples aligned with completions: [B*G]."""
        return [ex for ex in self.examples for _ in range(self.group_size)]
