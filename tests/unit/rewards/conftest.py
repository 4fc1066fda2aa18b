"""Builders shared by the reward tests: parsed batches and the examples they answer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from audio_thinker.data.example import AudioQAExample
from audio_thinker.format.parsing import parse_completion
from audio_thinker.embedded import architecture as tiny
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


@pytest.fixture(scope="session")
def tiny_judge_dir(tmp_path_factory) -> Path:
    """A tiny random text Qwen2 + tokenizer built inline in seconds (no format warm start: a judge needs none)."""
    path = tmp_path_factory.mktemp("tiny_judge")
    tokenizer = tiny.build_tokenizer()
    tiny.build_text_model(tokenizer, seed=0).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def embedded_judge(monkeypatch, tiny_judge_dir) -> Path:
    """Make the judge's default (`model_path=None` -> `ensure_tiny_qwen2()`) resolve to `tiny_judge_dir`.

    The real embedded model is built with a format warm start that takes minutes on a cold cache; the judge only
    needs *a* small chat model, and the lead's integration tests cover the real default.
    """
    monkeypatch.setattr(tiny, "ensure_tiny_qwen2", lambda *args, **kwargs: tiny_judge_dir)
    return tiny_judge_dir
