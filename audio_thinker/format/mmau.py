"""The `mmau` scorer: MMAU's published answer rule, applied to the answer as its official scorer would see it.

The rule (MMAU's `evaluation.py`, written here from its description): lower-case the texts and take their word
tokens (maximal runs of letters, digits and underscores, as regex `\\w+`); the output is right when it has at
least one token, every token of the gold option is among the output's tokens, and none of the output's tokens
belongs only to a wrong option (tokens of options whose token set equals the gold's, such as repeated copies of
the gold text, and tokens the gold shares, are allowed).

The official scorer reads free text and never credits a bare letter. Our prompt letters the options, so the
answer goes through `official_output` first: an answer that is only a letter label (`B`, `(B)`, `Option B`,
`The answer is B.`) becomes that option's text; anything else is passed as written. `predictions_official.json`
holds exactly these strings as `model_output`, so MMAU's own script prints the same accuracy as this scorer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from audio_thinker.format.matching import leading_label, strip_filler
from audio_thinker.format.words import words

_TOKEN = re.compile(r"\w+")


def mmau_tokens(text: str) -> set[str]:
    """The official rule's word tokens of `text`."""
    return set(_TOKEN.findall(text.lower()))


def mmau_rule(gold: str, output: str, choices: Sequence[str]) -> bool:
    """MMAU's rule on a free-text `output` (module docstring)."""
    said = mmau_tokens(output)
    gold_tokens = mmau_tokens(gold)
    wrong_only = set()
    for choice in choices:
        tokens = mmau_tokens(choice)
        if tokens != gold_tokens:
            wrong_only |= tokens - gold_tokens
    return bool(said) and gold_tokens <= said and not (said & wrong_only)


def official_output(answer: str | None, choices: Sequence[str] | None, letters: bool = True) -> str:
    """The `model_output` string for MMAU's scorer: a bare letter label becomes its option's text."""
    if answer is None:
        return ""
    if not (letters and choices):
        return answer
    bare = strip_filler(answer)
    found = leading_label(bare, choices)
    if found is None or words(found[1]):
        return answer  # not a bare letter
    return choices[found[0]]  # the label's option (`D` among notes G, A#, D, E is the option "D", as in `choice`)


def mmau_correct(answer: str | None, gold: str, choices: Sequence[str] | None, letters: bool = True) -> bool:
    """The `mmau` scorer: MMAU's rule on `official_output(answer)`."""
    return mmau_rule(gold, official_output(answer, choices, letters), choices or [])
