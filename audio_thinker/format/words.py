"""The words of an answer or an option, as the `choice` matcher compares them.

Rule: the text is NFKC-folded and case-folded; an apostrophe inside a word is dropped (don't -> dont); a point
or comma between two digits stays (5.1, 1,000); the symbols `# + % & $ ° ♯ ♭ @` stay glued to the word they
touch; every other character that is not a letter or a digit separates words. So `twenty-one` and `twenty one`
are the same words, while `A#`, `F#`, `C++` and `5.1` are words of their own that never equal `A`, `F`, `C`
or `5`. A run of symbols alone (the `###` of a Markdown heading) is not a word.
"""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHE = re.compile(r"(?<=\w)['’](?=\w)")
_ARTICLE = re.compile(r"^[\W_]*(?:a|an|the)\s+(?=\w)", re.IGNORECASE)
_WORD = re.compile(r"(?:[^\W_]|[#+%&$°♯♭@]|(?<=\d)[.,](?=\d))+")


def words(text: str) -> tuple[str, ...]:
    """The words of `text` under the module's rule."""
    text = _APOSTROPHE.sub("", unicodedata.normalize("NFKC", text).casefold())
    return tuple(w for w in _WORD.findall(text) if any(c.isalnum() for c in w))


def content_words(text: str) -> tuple[str, ...]:
    """The words of `text` without a leading article: a/an/the followed by a space and more text.

    So "the man" and "A woman" lose it, while option `a`, "A. Woman" (a letter label) and "A:maj/5" keep it.
    """
    return words(_ARTICLE.sub("", text, count=1))


def contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> list[int]:
    """Start positions where `needle` occurs as a contiguous run of whole words in `haystack`."""
    n = len(needle)
    return [i for i in range(len(haystack) - n + 1) if n and haystack[i : i + n] == needle]
