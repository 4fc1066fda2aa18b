"""The one example type every dataset produces and every reward reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audio_thinker.format.options import option_letter


@dataclass
class AudioQAExample:
    """One audio question-answer item.

    Attributes:
        id: unique within its dataset; names the example in every error and prediction file.
        question: the question text, without the options.
        answer: the gold answer: the option *text* for multiple choice, else the free-form answer.
        choices: the options, in order (letters A, B, ... are assigned by position); None for open questions.
        audio: mono float32 waveform at `sampling_rate`, or None for text-only examples.
        sampling_rate: samples per second of `audio`.
        task: task family, used to break accuracy down.
        difficulty: "easy" / "medium" / "hard" (or any label), used to break accuracy down.
        meta: anything else the source carried (kept, never interpreted).
    """

    id: str
    question: str
    answer: str
    choices: list[str] | None = None
    audio: np.ndarray | None = None
    sampling_rate: int = 16_000
    task: str = "unknown"
    difficulty: str = "unknown"
    meta: dict = field(default_factory=dict)

    @property
    def answer_letter(self) -> str | None:
        """The option letter of the gold answer, or None for open questions."""
        if not self.choices or self.answer not in self.choices:
            return None
        return option_letter(self.choices.index(self.answer))
