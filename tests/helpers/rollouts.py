"""Rollouts built by hand (no model): known shapes, lengths and advantages for the rollout and module tests."""

from __future__ import annotations

import torch

from audio_thinker.example import AudioQAExample
from audio_thinker.format.parsing import parse_completion
from audio_thinker.models.policy import PromptEncoding
from audio_thinker.rollout.batch import Rollout


def make_rollout(
    lengths: list[int],
    group_size: int = 2,
    width: int | None = None,
    advantages: list[float] | None = None,
    num_micro_batches: int = 1,
    vocab: int = 5,
) -> Rollout:
    """A rollout whose completion i has `lengths[i]` tokens (ids i % vocab, ...), padded to `width` columns.

    The examples are `len(lengths) // group_size` questions `q0, q1, ...` of two options each; the prompts are one
    token each, so `PromptEncoding.select` keeps them whole.
    """
    if len(lengths) % group_size:
        raise ValueError(f"{len(lengths)} completions do not make groups of {group_size}")
    count = len(lengths) // group_size
    width = width or max(max(lengths), 1)
    mask = torch.tensor([[1] * n + [0] * (width - n) for n in lengths])  # [N, C]
    ids = (torch.arange(len(lengths) * width).view(len(lengths), width) % vocab) * mask  # [N, C]
    texts = [f"<think>t{i}</think><answer>a</answer>" if i % 2 else "<answer>b</answer>" for i in range(len(lengths))]
    return Rollout(
        examples=[AudioQAExample(id=f"q{i}", question=f"q{i}?", answer="a", choices=["a", "b"]) for i in range(count)],
        group_size=group_size,
        encoding=PromptEncoding(torch.full((count, 1), 7), torch.ones(count, 1, dtype=torch.long)),
        completion_ids=ids,
        completion_mask=mask,
        completions=[parse_completion(t) for t in texts],
        think_lengths=[1 if i % 2 else 0 for i in range(len(lengths))],
        answer_lengths=[1] * len(lengths),
        num_micro_batches=num_micro_batches,
        rewards=None if advantages is None else torch.tensor(advantages),
        reward_terms={} if advantages is None else {"term": torch.tensor(advantages)},
        advantages=None if advantages is None else torch.tensor(advantages),
    )
