"""Plain Python functions as reward terms, in TRL's shape: `f(completions, examples, **kwargs) -> list[float | None]`.

    # my_rewards.py
    def brevity(completions, examples, **kwargs):
        return [1.0 if len(c.text) < 200 else 0.0 for c in completions]

    audio-thinker train +reward.terms.brevity._target_=my_rewards.brevity +reward.terms.brevity.weight=0.5

`completions` are `ParsedCompletion`s (`.text`, `.think`, `.answer`, `.mode`), `examples` the `AudioQAExample` each
answers (`.question`, `.choices`, `.answer`, `.task`, ...). The keyword arguments are `think_lengths`,
`answer_lengths`, `group_size`, `step`, `total_steps`, plus any extra keys of the term's config. `None` means
"not applicable" (NaN in the suite), as in TRL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from audio_thinker.rewards.base import RewardInputs, RewardTerm

RewardFunction = Callable[..., Sequence[float | None]]


class FunctionReward(RewardTerm):
    """A reward term that calls a plain function with the batch, TRL-style (see the module docstring)."""

    def __init__(self, function: RewardFunction, weight: float = 1.0, **options: Any) -> None:
        super().__init__(weight)
        if not callable(function):
            raise TypeError(f"FunctionReward needs a callable, got {function!r}")
        self.function, self.options = function, options

    def score(self, inputs: RewardInputs) -> Sequence[float | None]:
        return self.function(
            list(inputs.completions),
            list(inputs.examples),
            think_lengths=list(inputs.think_lengths),
            answer_lengths=list(inputs.answer_lengths),
            group_size=inputs.group_size,
            step=inputs.step,
            total_steps=inputs.total_steps,
            **self.options,
        )
