"""Read a score or a yes/no verdict out of a judge's reply; None (a parse failure) when it says neither.

With constrained decoding (in-process) or structured output (endpoints) a reply is exactly one of the grammar's
choices ("Yes", "7"); these rules are the fallback for free text, and they never guess:

- A score is an integer n on the stated scale 0..`scale`, read as n / scale: labelled ("Score: 7", "**Rating:**
  7/10", "score = 7 out of 10"), a fraction anywhere whose denominator is the scale ("I'd give it 7/10"), or a
  reply that is just the number ("7", "7.0"). Anything off the scale is a failure, never rescaled: "1.5", "0.7",
  "70%", "Score: 85", "3/5" on a 0–10 scale are all None.
- A verdict is a yes/no word at the start ("Yes.", "no - it argues for A") or after a label ("Verdict: no"), or
  consistent/inconsistent, agree/disagree, true/false, correct/incorrect.
A `<think>…</think>` block (reasoning judges such as Qwen3) is ignored before parsing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from audio_thinker.format.tags import THINK_CLOSE, THINK_OPEN

_NUMBER = r"(-?\d+(?:[.,]\d+)?)"
_OVER = rf"(?:\s*(?:/|out\s+of)\s*{_NUMBER})?"
_LABELLED = re.compile(rf"\b(?:score|rating|grade)\b[^\w-]{{0,6}}(?:is\s+)?{_NUMBER}{_OVER}")
_FRACTION = re.compile(rf"{_NUMBER}\s*(?:/|out\s+of)\s*{_NUMBER}")
_BARE = re.compile(rf"^[^\w-]*{_NUMBER}[^\w%]*$")
_THINK = re.compile(rf"{re.escape(THINK_OPEN)}.*?(?:{re.escape(THINK_CLOSE)}|$)", re.DOTALL)  # Qwen3 writes ours
_VERDICT_WORDS = {
    "yes": 1.0,
    "true": 1.0,
    "consistent": 1.0,
    "agree": 1.0,
    "agrees": 1.0,
    "correct": 1.0,
    "no": 0.0,
    "false": 0.0,
    "inconsistent": 0.0,
    "disagree": 0.0,
    "disagrees": 0.0,
    "incorrect": 0.0,
}
_LEADING_WORD = re.compile(r"^\W*([a-z]+)\b")
_LABELLED_VERDICT = re.compile(r"\b(?:verdict|answer|judgement|judgment)\b\W{0,6}([a-z]+)\b")


@dataclass(frozen=True)
class ReplyGrammar:
    """The replies a judge may give: exactly one of `choices` (constrained decoding, structured output)."""

    choices: tuple[str, ...]

    def json_schema(self) -> dict:
        """A JSON schema for `{"reply": <one of the choices>}`, for endpoints' structured output."""
        reply = {"type": "string", "enum": list(self.choices)}
        return {"type": "object", "properties": {"reply": reply}, "required": ["reply"], "additionalProperties": False}


VERDICT_GRAMMAR = ReplyGrammar(("Yes", "No"))


def score_grammar(scale: int) -> ReplyGrammar:
    """The integers 0..scale as text."""
    return ReplyGrammar(tuple(str(n) for n in range(scale + 1)))


def _clean(reply: str) -> str:
    """NFKC, lower-case, reasoning block removed."""
    return _THINK.sub(" ", unicodedata.normalize("NFKC", reply).lower()).strip()


def _on_scale(number: str, denominator: str | None, scale: int) -> float | None:
    """n / scale for an integer 0 <= n <= scale (with the scale as its denominator, if any), else None."""
    value = float(number.replace(",", "."))
    if denominator is not None and float(denominator.replace(",", ".")) != scale:
        return None
    if value != int(value) or not 0 <= value <= scale:
        return None
    return value / scale


def parse_score(reply: str | None, scale: int = 10) -> float | None:
    """A score in [0, 1] from a judge reply by the rules in the module docstring, or None."""
    if reply is None:
        return None
    text = _clean(reply)
    for pattern in (_LABELLED, _FRACTION, _BARE):
        if match := pattern.search(text):
            return _on_scale(match.group(1), match.group(2) if pattern.groups > 1 else None, scale)
    return None


def parse_verdict(reply: str | None) -> float | None:
    """1.0 / 0.0 from a yes/no style reply ("Yes.", "Verdict: no", "consistent"), or None."""
    if reply is None:
        return None
    text = _clean(reply)
    for pattern in (_LEADING_WORD, _LABELLED_VERDICT):
        if (match := pattern.search(text)) and match.group(1) in _VERDICT_WORDS:
            return _VERDICT_WORDS[match.group(1)]
    return None
