"""CESAR's overthinking penalty as a reward: shorter reasoning earns more, up to a length budget."""

from __future__ import annotations

from audio_thinker.rewards.base import RewardInputs, RewardTerm


class OverthinkingReward(RewardTerm):
    """R_overthinking = clip(1 − |t| / L_max, 0, 1), |t| = think tokens counted with the policy's tokenizer.

    L_max = 256 in the paper. Reasoning at or beyond L_max earns 0 (never negative, so a long but correct chain is
    not punished below a missing one). Only completions in mode "think" are scored: no think block, a blank one,
    or a malformed completion gets 0, not 1. |t| = 0 would otherwise pay the maximum for skipping the reasoning
    CESAR requires; 0 rather than NaN keeps the term's logged mean "what was paid" and makes it behave the same
    under any combiner (NaN would be skipped, which some combiners read as "no opinion").

    >>> from audio_thinker.format.parsing import parse_completion
    >>> from audio_thinker.example import AudioQAExample
    >>> ex = AudioQAExample(id="1", question="Which tone is higher?", answer="second", choices=["first", "second"])
    >>> done = [parse_completion(t) for t in ("<think>The second.</think><answer>B</answer>", "<answer>B</answer>")]
    >>> OverthinkingReward(l_max=256).score(RewardInputs(done, [ex, ex], [64, 0], [1, 1]))  # 1 - 64/256; no think
    [0.75, 0.0]
    """

    def __init__(self, weight: float = 1.0, l_max: int = 256) -> None:
        super().__init__(weight)
        if l_max <= 0:
            raise ValueError(f"OverthinkingReward.l_max must be a positive token count, got {l_max}")
        self.l_max = int(l_max)

    def score(self, inputs: RewardInputs) -> list[float]:
        return [
            min(max(1.0 - length / self.l_max, 0.0), 1.0) if c.mode == "think" else 0.0
            for c, length in zip(inputs.completions, inputs.think_lengths, strict=True)
        ]
