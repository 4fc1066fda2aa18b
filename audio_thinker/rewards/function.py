"""Plain Python functions as reward terms. Two shapes, told apart by the function's signature (`wrap_callable`):
TRL's and ms-SWIFT's `f(completions, **kwargs)` (`rewards.trl_style`), and ours, with parsed completions and the
examples, `f(completions, examples, **kwargs) -> list[float | None]`:

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

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from audio_thinker.rewards.base import RewardInputs, RewardTerm
from audio_thinker.rewards.trl_style import TRLStyleReward, describe

RewardFunction = Callable[..., Sequence[float | None]]


class FunctionReward(RewardTerm):
    """A reward term that calls a plain function with the batch, TRL-style (see the module docstring)."""

    def __init__(self, function: RewardFunction, weight: float = 1.0, **options: Any) -> None:
        super().__init__(weight)
        if not callable(function):
            raise TypeError(f"FunctionReward needs a callable, got {function!r}")
        self.function, self.options = function, options
        self.label = describe(function)

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


def wrap_callable(name: str, target: Any, weight: float = 1.0, options: dict | None = None) -> RewardTerm:
    """The term for a callable `_target_` that is not a `RewardTerm` class, by its shape:
    - a function (or callable object) with an `examples` parameter: ours (`FunctionReward`);
    - any other function or callable object: TRL's shape (`TRLStyleReward`), completions as texts or messages;
    - a class: ms-SWIFT's ORM, built with `options` as constructor arguments, its instances called with texts.
    """
    options = dict(options or {})
    if inspect.isclass(target):
        try:
            instance = target(**options)
        except TypeError as err:
            raise TypeError(
                f"reward.terms.{name}: cannot build {describe(target)}({', '.join(options)}) ({err}); its config "
                "keys other than _target_ and weight are the class's constructor arguments"
            ) from err
        return TRLStyleReward(instance, weight, texts_only=True)
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError) as err:
        raise TypeError(f"reward.terms.{name}: cannot read the signature of {describe(target)} ({err})") from err
    if "examples" in parameters:
        return FunctionReward(target, weight=weight, **options)
    return TRLStyleReward(target, weight, **options)
