"""Audio-Thinker's adaptive think-accuracy reward: payoffs that depend on whether the model chose to think."""

from __future__ import annotations

import math

from audio_thinker.rewards.base import RewardInputs, RewardTerm
from audio_thinker.rewards.outcome import is_correct


def think_gammas(think_share: float, step: int, total_steps: int) -> tuple[float, float]:
    """(γ_think, γ_nothink) = (exp(−λ(1 − s/T)), exp(−(1 − λ)(1 − s/T))), with s/T clipped to [0, 1]."""
    if total_steps <= 0:
        raise ValueError(
            f"total_steps must be positive to schedule the adaptive reward, got {total_steps}: "
            "set trainer.max_steps (the schedule runs over the whole training)"
        )
    remaining = 1.0 - min(max(step / total_steps, 0.0), 1.0)
    return math.exp(-think_share * remaining), math.exp(-(1.0 - think_share) * remaining)


class AdaptiveThinkAccuracyReward(RewardTerm):
    """R_a, with λ = share of think-mode completions in the batch, s = step, T = total steps:

        γ_think = exp(−λ(1 − s/T)),  γ_nothink = exp(−(1 − λ)(1 − s/T))
        think & correct → γ_think              think & wrong → −(1 − γ_think)
        no-think & correct → 2·γ_nothink       no-think & wrong → −γ_nothink − 2(1 − γ_nothink)

    At γ = 1 (end of training) the payoffs are +1, 0, +2, −1. The more the batch thinks, the smaller γ_think, so
    thinking pays less when everyone does it; the schedule fades as s → T.
    Malformed completions (neither valid shape) are scored as *wrong no-think*, whatever their answer: the answer
    was not delivered in a valid shape, and this is the lowest payoff (≤ −1), so a malformed output never beats a
    well-formed wrong one. λ counts them in the denominator (all N completions) but not as thinking.

    >>> from audio_thinker.format.parsing import parse_completion
    >>> from audio_thinker.example import AudioQAExample
    >>> ex = AudioQAExample(id="1", question="Which tone is higher?", answer="second", choices=["first", "second"])
    >>> done = [parse_completion("<think>It rises.</think><answer>B</answer>"), parse_completion("<answer>B</answer>")]
    >>> # λ = 1/2, s/T = 1: γ = 1 for both modes; think+correct 1, no-think+correct 2
    >>> AdaptiveThinkAccuracyReward().score(RewardInputs(done, [ex, ex], [3, 0], [1, 1], 2, step=10, total_steps=10))
    [1.0, 2.0]
    """

    def __init__(self, weight: float = 1.0, letters: bool = True) -> None:
        super().__init__(weight)
        self.letters = bool(letters)  # whether the prompt lettered the options (as AccuracyReward)

    def score(self, inputs: RewardInputs) -> list[float]:
        if len(inputs) == 0:
            return []
        think_share = inputs.batch_think_share
        if think_share is None:
            think_share = sum(c.mode == "think" for c in inputs.completions) / len(inputs)
        gamma_think, gamma_nothink = think_gammas(think_share, inputs.step, inputs.total_steps)
        values = []
        for completion, example in zip(inputs.completions, inputs.examples, strict=True):
            correct = completion.mode != "malformed" and is_correct(completion.answer, example, self.letters)
            if completion.mode == "think":
                values.append(gamma_think if correct else -(1.0 - gamma_think))
            else:
                values.append(2.0 * gamma_nothink if correct else -gamma_nothink - 2.0 * (1.0 - gamma_nothink))
        return values
