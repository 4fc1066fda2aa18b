"""Content concepts of a text and their overlap, the lexical core of CESAR's consistency reward.

C(text), step by step (deterministic, no model):
1. NFKC-normalise and lower-case ("Ｐｉｔｃｈ" -> "pitch", "ﬁlter" -> "filter").
2. Tokens are maximal runs of Unicode letters or digits; everything else separates ("don't" -> "don", "t").
   Scripts written without spaces (Chinese, Japanese) are not segmented: a run is one token.
3. Drop stop words (a YAML list, `assets/lexicons/stopwords_en.yaml` by default) and one-letter alphabetic
   tokens (option letters and fragments). Digits are kept ("2 beeps" keeps "2"). Words that decide answers
   (yes/no, up/down, then, one, more, same, in/out, ...) are not stop words.
4. Number words zero..twenty become digits ("three beeps" and the answer "3" share "3").
5. Fold each other purely alphabetic token with `stem`:
   a. Repeatedly strip the first suffix of SUFFIXES (in that order) whose removal leaves at least 3 characters,
      with the replacement shown ("ies" -> "y"); "s" is not stripped after "s", "u" or "i" ("bass", "chorus",
      "analysis"). Stop when no suffix applies.
   b. Then drop one final "e" if at least 3 characters remain ("tone" -> "ton", so "tones" and "tone" agree;
      "rising" -> "ris" and "rise" -> "ris"), or 2 after an "o" ("goes" -> "goe" -> "go", as "go" stays;
      "toes" and "toe" -> "to").
   c. Then, if more than 3 characters remain, undouble a final repeated letter ("humm" -> "hum", "fall" -> "fal").
   Examples: higher/highest -> high, pitches -> pitch, frequencies -> frequency, louder/loudly/loudness -> loud,
   humming/hummed -> hum, speakers -> speak, goes -> go. Over-folding ("early" -> "ear") is accepted: the rule
   only has to map the inflections of one word together, the same way every time.
   Snowball's English stemmer (Porter2) is not used: it strips "er"/"est" only inside its R2 region, so it leaves
   the comparatives these answers turn on apart from their base (higher/high, louder/loud), which (a) folds.

Sim(x, y) = |C(x) ∩ C(y)| / max(|C(x)|, |C(y)|), 0 when both are empty.
`content_tokens` keeps the same tokens in text order (with repeats), for rules that need order.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

# (suffix, replacement), tried in this order; longer and more specific suffixes first.
SUFFIXES: tuple[tuple[str, str], ...] = (
    ("iest", "y"),
    ("ies", "y"),
    ("ied", "y"),
    ("ier", "y"),
    ("ily", "y"),
    ("ness", ""),
    ("ing", ""),
    ("est", ""),
    ("ed", ""),
    ("er", ""),
    ("ly", ""),
    ("s", ""),
)
MIN_STEM = 3
# Number words as digits, so "three beeps" meets the option "3".
NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        (
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        )
    )
}
_TOKEN = re.compile(r"[^\W_]+")
_KEEP_S_AFTER = ("s", "u", "i")


def stem(token: str) -> str:
    """Fold an alphabetic lower-case token with the suffix rule in the module docstring."""
    if not token.isalpha():
        return token
    changed = True
    while changed:
        changed = False
        for suffix, replacement in SUFFIXES:
            if not token.endswith(suffix) or len(token) - len(suffix) < MIN_STEM:
                continue
            if suffix == "s" and token[-2] in _KEEP_S_AFTER:
                continue
            token = token[: -len(suffix)] + replacement
            changed = True
            break
    if token.endswith("e") and (len(token) > MIN_STEM or (token.endswith("oe") and len(token) == MIN_STEM)):
        token = token[:-1]  # "goe" (from "goes") -> "go": a 2-letter verb whose "s" form alone has an "e"
    if len(token) > MIN_STEM and token[-1] == token[-2]:
        token = token[:-1]
    return token


def tokenize(text: str) -> list[str]:
    """NFKC-normalised, lower-cased runs of letters or digits."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).lower())


@lru_cache(maxsize=8)
def load_stopwords(path: str | None = None) -> frozenset[str]:
    """Stop words from a YAML file with a `words` list (the packaged English list when `path` is None)."""
    if path is None:
        text = resources.files("audio_thinker").joinpath("assets/lexicons/stopwords_en.yaml").read_text()
    else:
        text = Path(path).read_text()
    data = yaml.safe_load(text)
    words = data.get("words") if isinstance(data, dict) else None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ValueError(f"stop-word file {path or 'stopwords_en.yaml'} needs a `words:` list of quoted strings")
    # Stop words go through the same normalisation as text, so "Don't" in the file still matches.
    return frozenset(token for word in words for token in tokenize(word))


def content_tokens(text: str | None, stopwords: frozenset[str]) -> list[str]:
    """The folded content tokens of `text` in order, repeats kept (steps 1-5 of the module docstring)."""
    if not text:
        return []
    return [
        NUMBER_WORDS.get(token) or stem(token)
        for token in tokenize(text)
        if token not in stopwords and not (len(token) == 1 and token.isalpha())
    ]


def concepts(text: str | None, stopwords: frozenset[str]) -> set[str]:
    """C(text): the set of folded content tokens of `text` (empty for None)."""
    return set(content_tokens(text, stopwords))


def overlap(x: set[str], y: set[str]) -> float:
    """Sim = |x ∩ y| / max(|x|, |y|), 0 when both sets are empty."""
    largest = max(len(x), len(y))
    return len(x & y) / largest if largest else 0.0


# Connectives that make an answer a sequence: "up then down", "a beep followed by a click", "low -> high".
_SEQUENCE_MARK = re.compile(r"\b(?:and\s+)?then\b|\bfollowed\s+by\b|->|→", re.IGNORECASE)


def sequence_parts(text: str | None, stopwords: frozenset[str]) -> list[list[str]]:
    """The content tokens of each part of a sequence answer ("up then down" -> [["up"], ["down"]]).

    Fewer than two non-empty parts means the text is not a sequence, and order cannot matter.
    """
    pieces = _SEQUENCE_MARK.split(unicodedata.normalize("NFKC", text or ""))
    return [part for piece in pieces if (part := content_tokens(piece, stopwords))]


def order_agrees(think: list[str], parts: list[list[str]]) -> bool:
    """False when `think` mentions the parts of a sequence answer only in another order.

    The parts the think mentions at all must appear in the answer's order: a chain of positions p1 < p2 < ... with
    a token of part k at p_k (earliest match first). Parts the think never mentions are no evidence either way.
    """
    position = -1
    for part in parts:
        places = [i for i, token in enumerate(think) if token in part]
        if not places:
            continue
        later = [i for i in places if i > position]
        if not later:
            return False
        position = later[0]
    return True
