"""Outcome rewards: is the answer right, and is the output in the required shape."""

from __future__ import annotations

from typing import Literal

from audio_thinker.example import AudioQAExample
from audio_thinker.format.matching import choice_correct
from audio_thinker.rewards.base import RewardInputs, RewardTerm


def is_correct(answer: str | None, example: AudioQAExample, letters: bool = True) -> bool:
    """Whether `answer` is right for `example` under the `choice` matcher, the one `audio-thinker eval` reports."""
    return choice_correct(answer, example.answer, example.choices, letters)


class AccuracyReward(RewardTerm):
    """R_acc = 1 if the parsed answer names the gold option (`format.matching`, the eval's `choice` scorer), else 0.

    `letters`: whether the prompt lettered the options (`rollout.prompt.letter_options`); without letters in the
    prompt a bare "B" names nothing.

    >>> from audio_thinker.format.parsing import parse_completion
    >>> from audio_thinker.example import AudioQAExample
    >>> ex = AudioQAExample(id="1", question="Which tone is higher?", answer="second", choices=["first", "second"])
    >>> done = [parse_completion("<answer>B</answer>"), parse_completion("<answer>first</answer>")]
    >>> AccuracyReward().score(RewardInputs(done, [ex, ex], [0, 0], [1, 1]))
    [1.0, 0.0]
    """

    def __init__(self, weight: float = 1.0, letters: bool = True) -> None:
        super().__init__(weight)
        self.letters = bool(letters)

    def score(self, inputs: RewardInputs) -> list[float]:
        pairs = zip(inputs.completions, inputs.examples, strict=True)
        return [float(is_correct(c.answer, e, self.letters)) for c, e in pairs]


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
