"""Validation during training: greedy answers to held-out examples, graded by the eval protocol.

`Validator.grade` runs `eval.predict` (one free greedy pass, no budget) on a batch and keeps, per example, only
what the `val/*` numbers need; `validation_metrics` turns the records of the whole validation set (every rank's,
duplicates dropped) into those numbers. `GRPOModule.validation_step` and its epoch-end hook do the Lightning side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from audio_thinker.eval.metrics import accuracy_by
from audio_thinker.eval.predict import predict
from audio_thinker.example import AudioQAExample
from audio_thinker.format.scorers import get_scorer
from audio_thinker.models.decoding import Decoding
from audio_thinker.models.policy import Policy


class ValRecord(NamedTuple):
    """One graded validation example (small and picklable: the records of every rank are gathered)."""

    id: str
    task: str
    difficulty: str
    correct: bool
    mode: str  # think | no_think | malformed
    think_tokens: int


class Validator:
    """Greedy validation with the training prompt: answers generated freely up to `max_new_tokens`.

    `scorer` grades the answers (`choice`, our matcher, as the accuracy reward does; `mmau` for MMAU's rule).
    """

    def __init__(self, prompt, max_new_tokens: int = 48, batch_size: int = 16, scorer: str = "choice") -> None:
        if max_new_tokens < 1 or batch_size < 1:
            raise ValueError(
                f"validation.max_new_tokens and validation.batch_size must be >= 1, got {max_new_tokens} and "
                f"{batch_size}"
            )
        get_scorer(scorer)  # an unknown scorer fails at start, naming the known ones
        self.prompt, self.max_new_tokens, self.batch_size, self.scorer = prompt, max_new_tokens, batch_size, scorer

    def grade(self, policy: Policy, examples: Sequence[AudioQAExample]) -> list[ValRecord]:
        """Greedy completions of `examples`, graded (no gradient; the caller sets eval mode)."""
        predictions = predict(
            policy,
            examples,
            self.prompt,
            budgets=(),
            decoding=Decoding(),
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            scorer=self.scorer,
        )
        return [ValRecord(p.id, p.task, p.difficulty, p.correct, p.mode, p.think_tokens) for p in predictions]


def unique_records(records: Iterable[ValRecord]) -> list[ValRecord]:
    """The first record of each example id: a distributed sampler repeats examples to even out the ranks."""
    first: dict[str, ValRecord] = {}
    for record in records:
        first.setdefault(record.id, record)
    return list(first.values())


def validation_metrics(records: Sequence[ValRecord]) -> dict[str, float]:
    """`val/accuracy`, `val/accuracy_by_task/<t>`, `val/accuracy_by_difficulty/<d>`, `val/think_rate`,
    `val/think_length` (mean think tokens, zeros included, as training's `think/length`), `val/malformed_rate`
    and `val/examples`, over every record.

    >>> records = [ValRecord("a", "pitch", "easy", True, "think", 10), ValRecord("b", "pitch", "hard", False,
    ...            "no_think", 0), ValRecord("c", "count", "hard", True, "think", 20)]
    >>> m = validation_metrics(records)
    >>> m["val/accuracy"], m["val/accuracy_by_task/pitch"], m["val/accuracy_by_difficulty/hard"], m["val/think_length"]
    (0.6666666666666666, 0.5, 0.5, 10.0)
    """
    if not records:
        return {}
    n = len(records)
    out = {
        "val/accuracy": sum(r.correct for r in records) / n,
        "val/think_rate": sum(r.mode == "think" for r in records) / n,
        "val/think_length": sum(r.think_tokens for r in records) / n,
        "val/malformed_rate": sum(r.mode == "malformed" for r in records) / n,
        "val/examples": float(n),
    }
    rows = [record._asdict() for record in records]
    for field in ("task", "difficulty"):
        out |= {f"val/accuracy_by_{field}/{name}": value for name, value in accuracy_by(rows, field).items()}
    return out
