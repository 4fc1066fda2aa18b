"""Turn a completion into its reasoning, its answer and its mode.

Rules (documented in the README, tested in tests/unit/format/test_parsing.py):
- mode "think":     the whole completion is `<think>T</think><answer>A</answer>` with non-blank T.
- mode "no_think":  the whole completion is `<answer>A</answer>`, or a think block that is blank
                    (an empty `<think></think>` is not reasoning).
- mode "malformed": anything else.
A *complete* block is an opening tag, text with no tag in it, and its closing tag. In every mode `answer` is the
text of the LAST complete `<answer>…</answer>` block and `think` that of the first complete `<think>…</think>`
block (None when there is none), so accuracy and format stay separate signals. Budget forcing makes models write
the closing tags again (`<answer>So the answer is C.</think><answer>C</answer>`): the answer read there is `C`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from audio_thinker.format.tags import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN

Mode = Literal["think", "no_think", "malformed"]

_TEXT = r"((?:(?!</?(?:think|answer)>).)*)"  # block text: anything but another tag
_THINK = rf"{re.escape(THINK_OPEN)}{_TEXT}{re.escape(THINK_CLOSE)}"
_ANSWER = rf"{re.escape(ANSWER_OPEN)}{_TEXT}{re.escape(ANSWER_CLOSE)}"
_THINK_ANSWER = re.compile(rf"^\s*{_THINK}\s*{_ANSWER}\s*$", re.DOTALL)
_ANSWER_ONLY = re.compile(rf"^\s*{_ANSWER}\s*$", re.DOTALL)
_ANY_THINK = re.compile(_THINK, re.DOTALL)
_ANY_ANSWER = re.compile(_ANSWER, re.DOTALL)


@dataclass(frozen=True)
class ParsedCompletion:
    """A completion split into its parts. `think`/`answer` are None when there is no complete block."""

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
