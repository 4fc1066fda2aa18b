"""The `choice` matcher: which option an answer names, and whether that is the gold one.

Rules (README "Answers and scorers"; tests in tests/unit/format/test_matching.py quote the MMAU items behind each):
1. Words: answers and options are compared as words (`format.words`: punctuation separates, case is ignored,
   `A#`/`F#`/`C++`/`5.1` are words of their own), a leading article (a/an/the) ignored on both sides.
2. Filler: leading phrases matching `FILLER` ("the answer is", "answer:", "so the correct option is", "I think",
   "it is", ...) are removed, up to four times; rules 3 and 4 try the answer as written, then without them.
3. Option text: the answer's words equal an option's words -> that option. An answer that is exactly an option's
   text means that option even when it also looks like a letter (option `a`, note names `D`, `E`).
4. Letter, only when the prompt lettered the options (`letters=True`): a label `B`, `(B)`, `[B]`, `B.`, `B)`, `B:`,
   `B,` (a mark, then a space or the end: `B:maj` is no label) or `Option B` (through rule 2) names option B, or
   the option whose whole text is that letter when there is one (notes `D`, option `a`, as in rule 3). Alone, the
   label names that option; with text after it, that text must not start with another label and must name no
   option other than the label's own ("B. car horn" and "B, because it honks" name B; "B. rain" and "B, C" name
   nothing; a label always decides, so "B. rain" never falls through to rule 5).
5. Containment: the option texts whose words occur as a whole-word run in the answer ("The answer is X",
   "X, because ...", "the X"); a run inside a longer named option's run does not count. Exactly one option text
   named -> that option; none, or two or more (an answer naming two options), -> no match.
Repeated option texts are one option text: a letter pointing at either copy names that text.
Open questions (no options): the answer's words equal the gold's, after rules 1-2.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from audio_thinker.format.options import letter_index
from audio_thinker.format.words import contains, content_words, words

FILLER = re.compile(
    r"^[\W_]*(?:"
    r"(?:so|thus|therefore|hence)\b"
    r"|i\s+(?:think|believe|choose|pick|would\s+say)(?:\s+that)?\b"
    r"|(?:it\s+is|it['’]s|this\s+is)\b"
    r"|(?:(?:the|my)\s+)?(?:(?:correct|right|final|best)\s+)?(?:answer|option|choice)"
    r"(?:\s+(?:is|would\s+be|should\s+be))?\b"
    r")[\s:,=\-]*",
    re.IGNORECASE,
)
# A letter label at the start: (B), [B], or B with marks (. ) : , ; *) then a space or the end ("B:maj" is no label).
_LABEL = re.compile(r"^[\s*_`\"']*(?:\(([a-z])\)|\[([a-z])\]|([a-z])(?=[.):,;*]*(?:\s|$)))[.):,;*\]]*", re.I)


def strip_filler(answer: str) -> str:
    """`answer` without its leading filler phrases (rule 2)."""
    for _ in range(4):
        match = FILLER.match(answer)
        if not match or not match.group(0):
            break
        answer = answer[match.end() :]
    return answer


def leading_label(text: str, choices: Sequence[str]) -> tuple[int, str] | None:
    """(option index, text after the label) when `text` starts with a letter label naming one of `choices`."""
    match = _LABEL.match(text)
    if not match:
        return None
    letter = next(g for g in match.groups() if g)
    as_text = [i for i, c in enumerate(choices) if content_words(c) == (letter.casefold(),)]
    index = as_text[0] if as_text else letter_index(letter)  # an option whose text is the letter wins (rule 3)
    return (index, text[match.end() :]) if index < len(choices) else None


def named_options(answer_words: tuple[str, ...], choices: Sequence[str]) -> set[str]:
    """The option texts whose words occur in `answer_words`, runs inside a longer named run left out (rule 5)."""
    runs = []  # (start, end, option text)
    for choice in dict.fromkeys(choices):
        option = content_words(choice)
        runs += [(start, start + len(option), choice) for start in contains(answer_words, option)]
    return {
        text
        for start, end, text in runs
        if not any(s <= start and end <= e and e - s > end - start for s, e, _ in runs)
    }


def _by_text(answer: str, choices: Sequence[str]) -> str | None:
    """The option whose words equal the answer's (rule 3)."""
    target = content_words(answer)
    return next((c for c in choices if target and content_words(c) == target), None)


def _by_letter(index: int, rest: str, choices: Sequence[str]) -> str | None:
    """The option named by a leading letter label for option `index` followed by `rest` (rule 4)."""
    if not words(rest):
        return choices[index]
    if leading_label(rest, choices) is not None:
        return None  # "B, C": two labels
    named = named_options(words(rest), choices)
    return choices[index] if named <= {choices[index]} else None


def match_option(answer: str | None, choices: Sequence[str], letters: bool = True) -> str | None:
    """The option text `answer` names under the module's rules, or None."""
    if not answer or not words(answer):
        return None
    bare = strip_filler(answer)
    for text in dict.fromkeys((answer, bare)):
        if (option := _by_text(text, choices)) is not None:
            return option
    if letters and (found := leading_label(answer, choices) or leading_label(bare, choices)):
        return _by_letter(*found, choices)  # a label decides: "B. rain" names nothing, not "rain"
    named = named_options(words(answer), choices)
    return named.pop() if len(named) == 1 else None


def match_choice(answer: str | None, choices: Sequence[str], letters: bool = True) -> int | None:
    """Index of the option `answer` names (the first copy of a repeated text), or None."""
    option = match_option(answer, choices, letters)
    return None if option is None else list(choices).index(option)


def choice_correct(answer: str | None, gold: str, choices: Sequence[str] | None, letters: bool = True) -> bool:
    """The `choice` scorer: `answer` names the gold option (multiple choice) or says the gold answer (open)."""
    if answer is None:
        return False
    if choices:
        option = match_option(answer, choices, letters)
        return option is not None and words(option) == words(gold)
    gold_words = content_words(gold)
    said = {content_words(answer), content_words(strip_filler(answer))}
    return bool(gold_words) and gold_words in said
