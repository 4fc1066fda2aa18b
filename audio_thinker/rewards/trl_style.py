"""Reward functions written for TRL's `GRPOTrainer` or ms-SWIFT's GRPO, used as they are.

TRL's shape is a function called with keyword arguments, one list entry per completion:

    # my_rewards.py
    def exact(completions, solution, **kwargs):
        return [1.0 if solution_ in c else 0.0 for c, solution_ in zip(completions, solution)]

    audio-thinker train +reward.terms.exact._target_=my_rewards.exact +reward.terms.exact.weight=1.0

ms-SWIFT's shape is a class (an ORM) whose instances are called as `orm(completions, **kwargs)`; its config keys
(other than `weight`) go to the class's constructor. Either may be `async`.

What the function receives:
- `completions`: the completion texts; for a conversational dataset (TRL's messages `prompt`, ms-SWIFT's
  `messages`) each is `[{"role": "assistant", "content": text}]`, as TRL passes them (ms-SWIFT ORMs get texts).
- `prompts`: the dataset's prompt (a string, or the list of messages), or our question text for our own formats.
- every dataset column by name (`solution`, `answer`, `task`, ...): a TRL or ms-SWIFT record's own columns, else
  `id`, `question`, `answer` (the gold option text), `choices`, `task`, `difficulty`; `solution` is the gold answer
  when the dataset has no column of that name.
- `trainer_state`: `.global_step` and `.max_steps`, as both libraries pass it.
- the keys of the term's config (other than `_target_` and `weight`), e.g. `limit=200`.
A function without `**kwargs` gets only the arguments it names. `None` means "not applicable" (NaN in the suite).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

from audio_thinker.example import AudioQAExample
from audio_thinker.rewards.base import RewardInputs, RewardTerm

# The fields every example offers a reward as columns, when its dataset has no column of the same name.
EXAMPLE_COLUMNS = ("id", "question", "answer", "choices", "task", "difficulty")
# Names the adapter passes itself: a dataset column of one of these names is not passed as a column.
RESERVED = ("completions", "prompts", "trainer_state")


def describe(function: Callable) -> str:
    """`module.name` of a function, class or callable object, for error messages."""
    target = function if inspect.isfunction(function) or inspect.isclass(function) else type(function)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


def reward_columns(example: AudioQAExample) -> dict[str, Any]:
    """The columns a TRL-style reward sees for one example (module docstring)."""
    columns = {name: getattr(example, name) for name in EXAMPLE_COLUMNS}
    columns["solution"] = example.answer
    columns.update(example.meta.get("columns") or {})
    for name in RESERVED:
        columns.pop(name, None)
    return columns


def reward_prompt(example: AudioQAExample) -> Any:
    """The prompt as the dataset wrote it (a string or messages), else the question."""
    return example.meta.get("prompt", example.question)


class TRLStyleReward(RewardTerm):
    """A reward in TRL's or ms-SWIFT's shape, `f(completions, **columns) -> list[float | None]` (module docstring).

    >>> from audio_thinker.format.parsing import parse_completion
    >>> def exact(completions, solution, **kwargs):
    ...     return [float(s in c) for c, s in zip(completions, solution)]
    >>> ex = AudioQAExample(id="1", question="Which is higher?", answer="second", choices=["first", "second"])
    >>> done = [parse_completion("<answer>second</answer>"), parse_completion("<answer>first</answer>")]
    >>> TRLStyleReward(exact)(RewardInputs(done, [ex, ex], [0, 0], [1, 1])).tolist()
    [1.0, 0.0]
    """

    def __init__(
        self, function: Callable[..., Sequence[float | None]], weight: float = 1.0, texts_only: bool = False, **options
    ) -> None:
        super().__init__(weight)
        if not callable(function):
            raise TypeError(f"TRLStyleReward needs a callable, got {function!r}")
        self.function, self.options, self.texts_only = function, options, texts_only
        self.label = describe(function)
        parameters = inspect.signature(function).parameters.values()
        self.takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters)
        self.named = {p.name: p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        self.completions_first = "completions" not in self.named and bool(positional)
        if self.completions_first:  # `f(comps, **kwargs)`: its first parameter takes the completions, by position
            self.named.pop(positional[0].name, None)
        if "completions" not in self.named and not positional and not self.takes_any:
            raise TypeError(
                f"reward function {self.label}{inspect.signature(function)} takes no completions: TRL's shape is "
                "f(completions, **kwargs) -> list[float | None]"
            )

    def arguments(self, inputs: RewardInputs) -> dict[str, Any]:
        """Every keyword argument on offer for this batch (module docstring), one list entry per completion."""
        examples = inputs.examples
        conversational = not self.texts_only and bool(examples) and all(e.meta.get("conversational") for e in examples)
        texts = [c.text for c in inputs.completions]
        completions = [[{"role": "assistant", "content": t}] for t in texts] if conversational else texts
        rows = [reward_columns(e) for e in examples]
        columns = {name: [row.get(name) for row in rows] for name in dict.fromkeys(k for row in rows for k in row)}
        state = SimpleNamespace(global_step=inputs.step, max_steps=inputs.total_steps)
        prompts = [reward_prompt(e) for e in examples]
        return {**columns, **self.options, "prompts": prompts, "completions": completions, "trainer_state": state}

    def score(self, inputs: RewardInputs) -> list[float | None]:
        offered = self.arguments(inputs)
        if self.takes_any:
            kwargs = offered
        else:
            missing = [n for n, p in self.named.items() if n not in offered and p.default is inspect.Parameter.empty]
            if missing:
                raise TypeError(
                    f"reward function {self.label} needs {missing}, which this batch does not offer (it offers "
                    f"{sorted(offered)}): add the column to the dataset, a key to the term's config, or **kwargs"
                )
            kwargs = {name: value for name, value in offered.items() if name in self.named}
        if self.completions_first:  # by position, as ms-SWIFT calls an ORM
            kwargs.pop("completions", None)
            values = self.function(offered["completions"], **kwargs)
        else:
            values = self.function(**kwargs)
        if inspect.isawaitable(values):
            values = asyncio.run(_awaited(values))
        return self._checked(values, len(inputs))

    def _checked(self, values: Any, count: int) -> list[float | None]:
        """The returned values as floats/None, or an error naming the function and what it returned."""
        if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
            raise TypeError(f"reward function {self.label} returned {values!r:.80} instead of a list of floats")
        values = list(values)
        if len(values) != count:
            raise ValueError(f"reward function {self.label} returned {len(values)} values for {count} completions")
        for value in values:
            if value is not None and (isinstance(value, str | bytes) or not _is_number(value)):
                raise TypeError(
                    f"reward function {self.label} returned {value!r:.80}; each value must be a float or None"
                )
        return [None if v is None else float(v) for v in values]


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


async def _awaited(awaitable):
    return await awaitable
