"""Outcome rewards: is the answer right, and is the output in the required shape."""

from __future__ import annotations

from typing import Literal

from audio_thinker.rewards.base import RewardInputs, RewardTerm
from audio_thinker.rewards.parsing import is_correct


class AccuracyReward(RewardTerm):
    """R_acc = 1 if the parsed answer matches the gold answer (letter or option text), else 0.

    >>> from audio_thinker.rewards.parsing import parse_completion
    >>> from audio_thinker.data.example import AudioQAExample
    >>> ex = AudioQAExample(id="1", question="Which tone is higher?", answer="second", choices=["first", "second"])
    >>> done = [parse_completion("<answer>B</answer>"), parse_completion("<answer>first</answer>")]
    >>> AccuracyReward().score(RewardInputs(done, [ex, ex], [0, 0], [1, 1]))
    [1.0, 0.0]
    """

    def score(self, inputs: RewardInputs) -> list[float]:
        return [float(is_correct(c.answer, e)) for c, e in zip(inputs.completions, inputs.examples, strict=True)]


class FormatReward(RewardTerm):
    """R_format = 1 if the completion has a required shape, else 0.

    `require="think"` (CESAR): exactly `<think>…</think><answer>…</answer>` with non-blank reasoning.
    `require="either"` (Audio-Thinker): that, or `<answer>…</answer>` alone.
    """

    def __init__(self, weight: float = 1.0, require: Literal["think", "either"] = "think") -> None:
        super().__init__(weight)
        if require not in ("think", "either"):
            raise ValueError(f"FormatReward.require must be 'think' or 'either', got {require!r}")
        self.require = require

    def score(self, inputs: RewardInputs) -> list[float]:
        if self.require == "either":
            return [float(c.mode != "malformed") for c in inputs.completions]
        return [float(c.mode == "think") for c in inputs.completions]  # a blank think block is not reasoning
