"""Reward terms that test configs name by `_target_`: dense signals a random tiny policy can climb."""

from __future__ import annotations

from audio_thinker.rewards.base import RewardInputs, RewardTerm


class WordCountReward(RewardTerm):
    """Occurrences of `word` in the completion / 8: dense enough for a random tiny policy to climb."""

    def __init__(self, weight: float = 1.0, word: str = " the") -> None:
        super().__init__(weight)
        self.word = word

    def score(self, inputs: RewardInputs) -> list[float]:
        return [c.text.count(self.word) / 8 for c in inputs.completions]


class TextLengthReward(RewardTerm):
    """Characters in the completion / 100: differs between any two samples, so every step has signal."""

    def score(self, inputs: RewardInputs) -> list[float]:
        return [len(c.text) / 100 for c in inputs.completions]


LENGTH_REWARD = [
    "~reward.terms.format",
    "~reward.terms.accuracy",
    "+reward.terms.length._target_=tests.helpers.rewards.TextLengthReward",
    # The embedded model is sure of what it says: at temperature 1 the two samples of a FAST group (12 tokens) are
    # often the same text, and a step without a reward difference moves nothing. Hotter sampling makes them differ.
    "rollout.temperature=2.0",
]


class StepStatsSpy(RewardTerm):
    """Text length / 100 (dense), and records what the step-wide statistics were when it was called."""

    seen: list[dict] = []

    def score(self, inputs: RewardInputs) -> list[float]:
        thinking = [len(c.text) for c in inputs.completions if c.mode != "malformed"]
        total, count = inputs.sum_over_step([sum(thinking), len(thinking)])  # a judge-style batch mean
        StepStatsSpy.seen.append(
            {"lambda": inputs.batch_think_share, "mean": total / max(count, 1), "completions": len(inputs)}
        )
        return [len(c.text) / 100 for c in inputs.completions]
