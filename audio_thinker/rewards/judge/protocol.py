"""What a judge backend is, what it reports about failed requests, and the errors that stop a run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from audio_thinker.rewards.base import RewardAbort
from audio_thinker.rewards.judge.scores import ReplyGrammar

Messages = list[dict[str, Any]]  # one chat conversation: [{"role": "system"|"user"|..., "content": str}, ...]


@runtime_checkable
class JudgeBackend(Protocol):
    """Answers each chat conversation with a reply string, or None when it could not (timeout, HTTP error, ...).

    `grammar`, when given, lists the only replies wanted; a backend that can enforce it (constrained decoding,
    structured output) should, and one that cannot may ignore it: the terms parse free text as a fallback.
    Optional members the terms use when present: `check()` (called once before training; raises
    `JudgeUnavailable` with what to do), `identity` (part of the cache key) and `last_report` (a
    `TransportReport` of the last call).
    """

    def complete(self, prompts: list[Messages], grammar: ReplyGrammar | None = None) -> list[str | None]:
        """One reply per conversation, in order."""
        ...


@dataclass
class TransportReport:
    """Why the prompts of one `complete` call got no reply, for the one summary line a step logs."""

    failures: Counter[str] = field(default_factory=Counter)  # reason ("timeout", "HTTP 500", ...) -> prompts
    examples: dict[str, str] = field(default_factory=dict)  # reason -> one detail (redacted)
    abandoned: int = 0  # attempts cut at their deadline: the server may still be computing them

    def fail(self, reason: str, detail: str) -> None:
        self.failures[reason] += 1
        self.examples.setdefault(reason, detail)

    def describe(self) -> str:
        """e.g. "timeout ×3 (no full reply within 2.0 s); HTTP 500 ×1 (internal error)"."""
        return "; ".join(f"{reason} ×{n} ({self.examples[reason]})" for reason, n in self.failures.most_common())


class JudgeUnavailable(RewardAbort):
    """The judge cannot answer at all (endpoint down, model missing, failure rate over the limit)."""


class JudgeInterrupted(RewardAbort):
    """SIGTERM arrived while waiting for the judge: pending requests were cancelled and the run stops."""


def plain(value: Any) -> Any:
    """Nested mappings and sequences as dicts and lists (Hydra hands over DictConfig, which JSON cannot encode)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(v) for v in value]
    return value
