"""A reward term that raises is named, with the example it failed on, through `RewardSuite`."""

from __future__ import annotations

import pytest

from audio_thinker.example import AudioQAExample
from audio_thinker.rewards.base import RewardInputs, RewardTerm
from audio_thinker.rewards.judge.terms import JudgeThinkReward
from audio_thinker.rewards.outcome import AccuracyReward
from audio_thinker.rewards.suite import RewardError, RewardSuite


class ChokesOnId(RewardTerm):
    """Raises on one example id, like a term meeting data it cannot handle."""

    def score(self, inputs: RewardInputs) -> list[float]:
        for example in inputs.examples:
            if example.id == "bad-7":
                raise KeyError("no transcript for this clip")
        return [1.0] * len(inputs)


def test_error_names_the_term_and_the_example(make_inputs, violin):
    bad = AudioQAExample(id="bad-7", question="q", answer="violin", choices=violin.choices)
    inputs = make_inputs(["<answer>B</answer>"] * 3, [violin, bad, violin])
    suite = RewardSuite({"accuracy": AccuracyReward(), "transcript": ChokesOnId()})
    with pytest.raises(RewardError) as caught:
        suite(inputs)
    message = str(caught.value)
    assert "'transcript'" in message and "ChokesOnId" in message and "id='bad-7'" in message
    assert "no transcript for this clip" in message
    assert isinstance(caught.value.__cause__, KeyError)


class ShortJudge:
    """A broken backend that drops the last reply."""

    def complete(self, prompts, grammar=None):
        return ["Score: 0.5"] * (len(prompts) - 1)


def test_a_broken_judge_is_named(make_inputs, violin):
    suite = RewardSuite({"judge_think": JudgeThinkReward(ShortJudge())})
    with pytest.raises(RewardError, match="'judge_think'.*ShortJudge answered 0 of 1"):
        suite(make_inputs(["<think>Bowed.</think><answer>B</answer>"], violin))
