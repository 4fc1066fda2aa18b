"""CESAR's keyword reward: analytical patterns, logical connectives and audio vocabulary in the reasoning."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from audio_thinker.rewards.base import RewardInputs, RewardTerm

DEFAULT_LEXICON = "assets/lexicons/cesar_keywords.yaml"
# A gap ("if … then") spans any text inside one sentence, bounded so a pathological think cannot backtrack long.
_GAP = r"[^.!?\n]{0,200}?"
_GAP_MARK = re.compile(r"\s*(?:…|\.\.\.)\s*")


@dataclass(frozen=True)
class LexiconComponent:
    """One saturating component: `max * min(n, cap) / cap`, n = distinct entries found."""

    name: str
    cap: int
    max: float
    terms: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]

    def value(self, text: str) -> float:
        """The component's reward on an already-normalised text."""
        found = sum(1 for pattern in self.patterns if pattern.search(text))
        return self.max * min(found, self.cap) / self.cap


def _normalize(text: str) -> str:
    """NFKC + lower-case, so full-width or ligature spellings match the lexicon."""
    return unicodedata.normalize("NFKC", text).lower()


def compile_entry(entry: str) -> re.Pattern[str]:
    """A lexicon entry as a whole-word regex: spaces match any whitespace, "…"/"..." a gap within one sentence."""
    parts = [p for p in _GAP_MARK.split(_normalize(entry).strip()) if p]
    if not parts:
        raise ValueError(f"empty keyword entry {entry!r}")
    words = [r"\s+".join(re.escape(w) for w in part.split()) for part in parts]
    # (?<!\w)/(?!\w) instead of \b so entries that start or end with punctuation still need a word edge.
    return re.compile(r"(?<!\w)" + (r"(?!\w)" + _GAP + r"(?<!\w)").join(words) + r"(?!\w)")


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
        if not isinstance(terms, list) or not terms or not all(isinstance(t, str) for t in terms):
            raise ValueError(f"keyword lexicon {source}: component {name!r} needs a non-empty `terms` list of strings")
        if not isinstance(cap, int) or cap < 1:
            raise ValueError(f"keyword lexicon {source}: component {name!r} needs an integer `cap` >= 1, got {cap!r}")
        maximum = float(spec.get("max", 1.0 / len(data)))
        patterns = tuple(compile_entry(t) for t in terms)
        components.append(LexiconComponent(str(name), cap, maximum, tuple(terms), patterns))
    return tuple(components)


class KeywordReward(RewardTerm):
    """R_keywords = R_pattern + R_logic + R_domain, each R_k = max_k · min(n_k, cap_k) / cap_k.

    n_k counts the *distinct* lexicon entries of component k found in the think text (whole words,
    case-insensitive, NFKC; multi-word phrases; "if … then" as a gap pattern within one sentence). Repeating an
    entry counts once, and more than cap_k entries pay nothing extra, so stuffing trigger words cannot push a
    component past max_k. With the packaged lexicon (caps 3, 3, 4; max 1/3 each) R_keywords ∈ [0, 1].
    Lexicons are YAML (`assets/lexicons/cesar_keywords.yaml`); pass `lexicon_path` to use your own.

    Only completions in mode "think" are scored; no think block, a blank one, or a malformed completion gets 0
    (the same rule as every CESAR process reward).

    >>> from audio_thinker.format.parsing import parse_completion
    >>> from audio_thinker.data.example import AudioQAExample
    >>> ex = AudioQAExample(id="1", question="Which tone is higher?", answer="second", choices=["first", "second"])
    >>> done = parse_completion("<think>First compare the pitch: because it rises, B.</think><answer>B</answer>")
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
        text = _normalize(think or "")
        values = {component.name: component.value(text) for component in self.components}
        values["total"] = sum(values.values())
        return values
