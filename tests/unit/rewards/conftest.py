"""Builders shared by the reward tests: parsed batches and the examples they answer."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from audio_thinker.example import AudioQAExample
from audio_thinker.format.parsing import parse_completion
from audio_thinker.rewards.base import RewardInputs


@pytest.fixture
def violin() -> AudioQAExample:
    """A multiple-choice item: C(Q) = {instrument, play, melody, piano, violin, drum}; gold B = "violin"."""
    return AudioQAExample(
        id="violin-1",
        question="Which instrument plays the melody?",
        answer="violin",
        choices=["piano", "violin", "drums"],
    )


@pytest.fixture
def make_inputs():
    """`make_inputs(texts, examples, think_lengths=None, step=0, total_steps=1)` -> RewardInputs.

    One example is repeated for every text; lengths default to whitespace words (tests that care pass them).
    """

    def make(
        texts: Sequence[str],
        examples: AudioQAExample | Sequence[AudioQAExample],
        think_lengths: Sequence[int] | None = None,
        step: int = 0,
        total_steps: int = 1,
    ) -> RewardInputs:
        completions = [parse_completion(t) for t in texts]
        if isinstance(examples, AudioQAExample):
            examples = [examples] * len(texts)
        if think_lengths is None:
            think_lengths = [len((c.think or "").split()) for c in completions]
        answer_lengths = [len((c.answer or "").split()) for c in completions]
        return RewardInputs(completions, list(examples), list(think_lengths), answer_lengths, 1, step, total_steps)

    return make
