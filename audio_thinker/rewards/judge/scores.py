"""Read a score or a yes/no verdict out of a judge's free-text reply; None when the reply says neither.

Scores, in order of trust:
1. a labelled number: "Score: 0.7", "rating = 7/10", "**Score:** 8 out of 10", "score: 70%";
2. a fraction anywhere: "I'd give it 7/10", "3 out of 5";
3. a reply that is just a number: "0.7", "7", "70%";
4. a reply that starts with yes/no: 1.0 / 0.0.
A number with a denominator is divided by it; "%" divides by 100; a bare number in [0, 1] is taken as is, in
(1, 10] as out of 10, in (10, 100] as a percentage. Anything else, or a result outside [0, 1], is None.
A `<think>…</think>` block (reasoning judges such as Qwen3) is ignored before parsing.
"""

from __future__ import annotations

import re
import unicodedata

_NUMBER = r"(\d+(?:[.,]\d+)?|[.,]\d+)"
_OVER = rf"(?:\s*(?:/|out\s+of)\s*{_NUMBER})?"
# A minus sign is not skipped as punctuation: "score: -1" must not read as 1.
_LABELLED = re.compile(rf"\b(?:score|rating|grade)\b[^\w-]{{0,6}}(?:is\s+)?{_NUMBER}{_OVER}(\s*%)?")
_FRACTION = re.compile(rf"{_NUMBER}\s*(?:/|out\s+of)\s*{_NUMBER}")
_BARE = re.compile(rf"^[^\w-]*{_NUMBER}(\s*%)?\W*$")
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)
_VERDICT_WORDS = {
    "yes": 1.0, "true": 1.0, "consistent": 1.0, "agree": 1.0, "agrees": 1.0, "correct": 1.0,
    "no": 0.0, "false": 0.0, "inconsistent": 0.0, "disagree": 0.0, "disagrees": 0.0, "incorrect": 0.0,
}  # fmt: skip
_LEADING_WORD = re.compile(r"^\W*([a-z]+)\b")
_LABELLED_VERDICT = re.compile(r"\b(?:verdict|answer|judgement|judgment)\b\W{0,6}([a-z]+)\b")


def _clean(reply: str) -> str:
    """NFKC, lower-case, reasoning block removed."""
    return _THINK.sub(" ", unicodedata.normalize("NFKC", reply).lower()).strip()


def _number(text: str) -> float:
    return float(text.replace(",", "."))


def _scaled(value: float, denominator: str | None, percent: bool) -> float | None:
    """A raw number read with its denominator or % sign, mapped to [0, 1], or None if it cannot be."""
    if denominator is not None:
        bottom = _number(denominator)
        result = value / bottom if bottom > 0 else None
    elif percent:
        result = value / 100.0
    elif value <= 1.0:
        result = value
    elif value <= 10.0:
        result = value / 10.0
    elif value <= 100.0:
        result = value / 100.0
    else:
        result = None
    return result if result is not None and 0.0 <= result <= 1.0 else None


def parse_score(reply: str | None) -> float | None:
    """A score in [0, 1] from a judge reply, by the rules in the module docstring, or None."""
    if reply is None:
        return None
    text = _clean(reply)
    if match := _LABELLED.search(text):
        return _scaled(_number(match.group(1)), match.group(2), bool(match.group(3)))
    if match := _FRACTION.search(text):
        return _scaled(_number(match.group(1)), match.group(2), False)
    if match := _BARE.match(text):
        return _scaled(_number(match.group(1)), None, bool(match.group(2)))
    if (match := _LEADING_WORD.match(text)) and match.group(1) in ("yes", "no"):
        return _VERDICT_WORDS[match.group(1)]
    return None


def parse_verdict(reply: str | None) -> float | None:
    """1.0 / 0.0 from a yes/no style reply ("Yes.", "Verdict: no", "consistent"), else a score ≥ 0.5, or None."""
    if reply is None:
        return None
    text = _clean(reply)
    for pattern in (_LEADING_WORD, _LABELLED_VERDICT):
        if (match := pattern.search(text)) and match.group(1) in _VERDICT_WORDS:
            return _VERDICT_WORDS[match.group(1)]
    score = parse_score(text)
    return None if score is None else float(score >= 0.5)
