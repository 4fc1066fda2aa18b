"""Turn a completion into its reasoning, its answer and its mode, and match answers to gold.

Rules (documented in the README, tested in tests/unit/rewards/test_parsing.py):
- mode "think":     the whole completion is `<think>T</think><answer>A</answer>` with non-blank T.
- mode "no_think":  the whole completion is `<answer>A</answer>`, or a think block that is blank
                    (an empty `<think></think>` is not reasoning).
- mode "malformed": anything else. `answer` is still read from the last `<answer>…</answer>` if there is one,
                    so accuracy and format are separate signals.
- Multiple choice: an answer matches by option letter ("B", "(b)", "B.", "Option B", "B. the second tone")
  or by option text, case-, punctuation- and whitespace-insensitive. Open answers: normalised exact match.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass
from typing import Literal

from audio_thinker.data.example import AudioQAExample

Mode = Literal["think", "no_think", "malformed"]

# A block's text may not contain another tag, so "<answer>A</answer><answer>B</answer>" is malformed.
_TEXT = r"((?:(?!</?(?:think|answer)>).)*)"
_THINK_ANSWER = re.compile(rf"^\s*<think>{_TEXT}</think>\s*<answer>{_TEXT}</answer>\s*$", re.DOTALL)
_ANSWER_ONLY = re.compile(rf"^\s*<answer>{_TEXT}</answer>\s*$", re.DOTALL)
_ANY_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_ANY_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_LETTER = re.compile(r"^\s*(?:option\s+)?\(?([a-z])\)?(?:\s*[.:)\-]|\s|$)", re.IGNORECASE)
_PUNCT = str.maketrans("", "", string.punctuation)


@dataclass(frozen=True)
class ParsedCompletion:
    """A completion split into its parts. `think`/`answer` are None when the tag is absent."""

    text: str
    think: str | None
    answer: str | None
    mode: Mode
    has_think_block: bool


def parse_completion(text: str) -> ParsedCompletion:
    """Split `text` into think, answer and mode following the module's rules."""
    if match := _THINK_ANSWER.match(text):
        think, answer = match.group(1).strip(), match.group(2).strip()
        return ParsedCompletion(text, think, answer, "think" if think else "no_think", True)
    if match := _ANSWER_ONLY.match(text):
        return ParsedCompletion(text, None, match.group(1).strip(), "no_think", False)
    think_match = _ANY_THINK.search(text)
    answers = _ANY_ANSWER.findall(text)
    think = think_match.group(1).strip() if think_match else None
    answer = answers[-1].strip() if answers else None
    return ParsedCompletion(text, think, answer, "malformed", think_match is not None)


def normalize_text(text: str) -> str:
    """Lower-case, NFKC-fold, drop punctuation and collapse whitespace."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCT)
    return " ".join(text.split())


def match_choice(answer: str, choices: list[str]) -> int | None:
    """Index of the option `answer` names (by text first, then by letter), or None."""
    normalized = normalize_text(answer)
    if not normalized:
        return None
    for index, choice in enumerate(choices):
        if normalized == normalize_text(choice):
            return index
    if match := _LETTER.match(answer):
        index = ord(match.group(1).lower()) - ord("a")
        if index < len(choices):
            rest = normalize_text(answer[match.end() :])
            # "B. the second tone" must name option B's text if it names any text at all.
            if not rest or rest == normalize_text(choices[index]):
                return index
    return None


def is_correct(answer: str | None, example: AudioQAExample) -> bool:
    """Whether `answer` is the gold answer of `example` (multiple choice or open)."""
    if answer is None:
        return False
    if example.choices:
        index = match_choice(answer, example.choices)
        return index is not None and normalize_text(example.choices[index]) == normalize_text(example.answer)
    return normalize_text(answer) == normalize_text(example.answer) != ""
