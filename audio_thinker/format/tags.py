"""The tags that delimit reasoning and answer in a completion (`<think>…</think><answer>…</answer>`), and a
completion written with them."""

from __future__ import annotations

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)


def completion_text(answer: str, think: str | None = None) -> str:
    """`<think>{think}</think><answer>{answer}</answer>`, or `<answer>{answer}</answer>` alone when `think` is None
    ("" writes the empty think block a zero reasoning budget leaves)."""
    reasoning = "" if think is None else f"{THINK_OPEN}{think}{THINK_CLOSE}"
    return f"{reasoning}{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"
