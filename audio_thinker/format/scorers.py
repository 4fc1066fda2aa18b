"""The answer scorers by name: `eval.scorer` picks the headline one, and every one is reported."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from audio_thinker.format.matching import choice_correct
from audio_thinker.format.mmau import mmau_correct

# (answer, gold, choices, letters) -> correct
Scorer = Callable[[str | None, str, Sequence[str] | None, bool], bool]
SCORERS: dict[str, Scorer] = {"mmau": mmau_correct, "choice": choice_correct}


def get_scorer(name: str) -> Scorer:
    """The scorer called `name`; an unknown name fails naming the known ones."""
    if name not in SCORERS:
        raise ValueError(f"unknown scorer {name!r}; use one of {sorted(SCORERS)}")
    return SCORERS[name]
