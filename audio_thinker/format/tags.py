"""The tags that delimit reasoning and answer in a completion: `<think>…</think><answer>…</answer>`."""

from __future__ import annotations

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
