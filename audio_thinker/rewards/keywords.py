"""CESAR's keyword reward: analytical patterns, logical connectives and audio vocabulary in the reasoning."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from audio_thinker.rewards.base import RewardInputs, RewardTerm

DEFAULT_LEXICON = "assets/lexicons/cesar_keywords.yaml"
# A gap ("if … then") spans any text inside one sentence, bounded so a pathological think cannot backtrack long.
_GAP = r"[^.!?\n]{0,200}?"
_GAP_MARK = re.compile(r"\s*(?:…|\.\.\.)\s*")
_WORD = re.compile(r"[^\W_]+")
# What may stand between a clause boundary and a `start: true` entry: spaces and opening quotes or brackets.
_CLAUSE_START = re.compile(r"(?:^|[.!?;:,\n])[\s\"'(\[*-]*$")
NEAR_WINDOW = 2  # words on either side that a `near` entry looks at


@dataclass(frozen=True)
class LexiconEntry:
    """One lexicon entry: its text, a whole-word regex (one group per word run) and its sense conditions.

    `start`: counts only at the start of a sentence or clause ("First, ..." / ", so the ..."), not as an ordinal or
    an intensifier ("the first tone", "so loud"). `near`: counts only with one of these words within
    `NEAR_WINDOW` words ("key" next to "minor", not "the key point").
    """

    text: str
    pattern: re.Pattern[str]
    start: bool = False
    near: frozenset[str] = frozenset()

    def spans(self, text: str) -> Iterator[tuple[int, int, tuple[tuple[int, int], ...]]]:
        """(start, end, word-run spans) of each match that meets the sense conditions; gaps occupy no text."""
        for match in self.pattern.finditer(text):
            if self.start and not _CLAUSE_START.search(text[: match.start()]):
                continue
            if self.near and not self._has_neighbour(text, match.start(), match.end()):
                continue
            runs = tuple(match.span(g) for g in range(1, (match.lastindex or 0) + 1))
            yield match.start(), match.end(), runs

    def _has_neighbour(self, text: str, start: int, end: int) -> bool:
        before = _WORD.findall(text[:start])[-NEAR_WINDOW:]
        after = _WORD.findall(text[end:])[:NEAR_WINDOW]
        return any(word in self.near for word in before + after)


@dataclass(frozen=True)
class LexiconComponent:
    """One saturating component: `max * min(n, cap) / cap`, n = distinct entries found."""

    name: str
    cap: int
    max: float
    entries: tuple[LexiconEntry, ...]

    def value(self, found: int) -> float:
        """The component's reward for `found` distinct entries."""
        return self.max * min(found, self.cap) / self.cap


def _normalize(text: str) -> str:
    """NFKC + lower-case, so full-width or ligature spellings match the lexicon."""
    return unicodedata.normalize("NFKC", text).lower()


def compile_entry(entry: str) -> re.Pattern[str]:
    """A lexicon entry as a whole-word regex: spaces match any whitespace, "…"/"..." a gap within one sentence.

    Each word run is a capture group, so a match knows which text it occupies (a gap's text is not occupied).
    """
    parts = [p for p in _GAP_MARK.split(_normalize(entry).strip()) if p]
    if not parts:
        raise ValueError(f"empty keyword entry {entry!r}")
    words = ["(" + r"\s+".join(re.escape(w) for w in part.split()) + ")" for part in parts]
    # (?<!\w)/(?!\w) instead of \b so entries that start or end with punctuation still need a word edge.
    return re.compile(r"(?<!\w)" + (r"(?!\w)" + _GAP + r"(?<!\w)").join(words) + r"(?!\w)")


def _entry(raw: object, where: str) -> LexiconEntry:
    """A lexicon entry from YAML: a string, or {term, start?, near?}."""
    if isinstance(raw, str):
        return LexiconEntry(raw, compile_entry(raw))
    if isinstance(raw, dict) and isinstance(raw.get("term"), str) and set(raw) <= {"term", "start", "near"}:
        near = raw.get("near") or []
        if not isinstance(near, list) or not all(isinstance(w, str) for w in near):
            raise ValueError(f"{where}: entry {raw['term']!r} needs `near` as a list of quoted words")
        words = frozenset(_normalize(w) for w in near)
        return LexiconEntry(raw["term"], compile_entry(raw["term"]), bool(raw.get("start", False)), words)
    raise ValueError(
        f"{where}: an entry must be a quoted string or {{term: ..., start: true, near: [...]}}; got {raw!r}"
    )


def load_lexicon(path: str | None = None) -> tuple[LexiconComponent, ...]:
    """Components from a YAML lexicon (`{name: {cap, terms, max?}}`); the packaged CESAR lexicon when None."""
    source = path or DEFAULT_LEXICON
    text = (
        resources.files("audio_thinker").joinpath(DEFAULT_LEXICON).read_text()
        if path is None
        else Path(path).read_text()
    )
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not data:
        raise ValueError(f"keyword lexicon {source} must map component names to {{cap, terms}}")
    components = []
    for name, spec in data.items():
        terms = spec.get("terms") if isinstance(spec, dict) else None
        cap = spec.get("cap") if isinstance(spec, dict) else None
        if not isinstance(terms, list) or not terms:
            raise ValueError(f"keyword lexicon {source}: component {name!r} needs a non-empty `terms` list of strings")
        if not isinstance(cap, int) or cap < 1:
            raise ValueError(f"keyword lexicon {source}: component {name!r} needs an integer `cap` >= 1, got {cap!r}")
        maximum = float(spec.get("max", 1.0 / len(data)))
        entries = tuple(_entry(t, f"keyword lexicon {source}, component {name!r}") for t in terms)
        components.append(LexiconComponent(str(name), cap, maximum, entries))
    return tuple(components)


def found_entries(components: tuple[LexiconComponent, ...], text: str) -> dict[str, set[str]]:
    """The distinct entries of each component found in a normalised text, each piece of text counted once.

    Overlapping matches ("chord" inside "chord progression", "does not match" inside "option a does not match")
    are resolved longest first, over the whole lexicon: a match whose words overlap an accepted one is dropped.
    """
    matches = [
        (sum(b - a for a, b in runs), -start, component.name, entry.text, runs)
        for component in components
        for entry in component.entries
        for start, _, runs in entry.spans(text)
    ]
    taken: list[tuple[int, int]] = []
    found: dict[str, set[str]] = {component.name: set() for component in components}
    for _, _, name, entry_text, runs in sorted(matches, key=lambda m: (-m[0], -m[1])):
        if any(a < d and c < b for a, b in runs for c, d in taken):
            continue
        taken.extend(runs)
        found[name].add(entry_text)
    return found


class KeywordReward(RewardTerm):
    """R_keywords = R_pattern + R_logic + R_domain, each R_k = max_k · min(n_k, cap_k) / cap_k.

    n_k counts the *distinct* lexicon entries of component k found in the think text (whole words,
    case-insensitive, NFKC; multi-word phrases; "if … then" as a gap pattern within one sentence). Repeating an
    entry counts once, and more than cap_k entries pay nothing extra, so stuffing trigger words cannot push a
    component past max_k. Each piece of text counts for one entry only, the longest match ("chord progression" is
    one entry, not also "chord"). Entries can carry a sense condition (`start`, `near`; see `LexiconEntry`) so
    "the first tone", "so loud" or "the key point" pay nothing. With the packaged lexicon (caps 3, 3, 4; max 1/3
    each) R_keywords ∈ [0, 1]. Lexicons are YAML (`assets/lexicons/cesar_keywords.yaml`); pass `lexicon_path` to
    use your own.

    Only completions in mode "think" are scored; no think block, a blank one, or a malformed completion gets 0
    (the same rule as every CESAR process reward).

    >>> from audio_thinker.format.parsing import parse_completion
    >>> from audio_thinker.example import AudioQAExample
    >>> ex = AudioQAExample(id="1", question="Which tone is higher?", answer="second", choices=["first", "second"])
    >>> done = parse_completion("<think>First, compare the pitch: because it rises, B.</think><answer>B</answer>")
    >>> # pattern {first, compare}: 2/3 · 1/3; logic {because}: 1/3 · 1/3; domain {pitch}: 1/4 · 1/3
    >>> round(KeywordReward().score(RewardInputs([done], [ex], [12], [1]))[0], 6)
    0.416667
    """

    def __init__(self, weight: float = 1.0, lexicon_path: str | None = None) -> None:
        super().__init__(weight)
        self.components = load_lexicon(lexicon_path)

    def score(self, inputs: RewardInputs) -> list[float]:
        return [self.breakdown(c.think)["total"] if c.mode == "think" else 0.0 for c in inputs.completions]

    def breakdown(self, think: str | None) -> dict[str, float]:
        """Each component's value on `think`, plus their sum under "total"."""
        found = found_entries(self.components, _normalize(think or ""))
        values = {component.name: component.value(len(found[component.name])) for component in self.components}
        values["total"] = sum(values.values())
        return values
