"""The judge terms with a scripted backend: which completions are judged, parsing, fallbacks, batch mean."""

from __future__ import annotations

import math

import pytest

from audio_thinker.rewards.judge.cache import JudgeCache
from audio_thinker.rewards.judge.terms import JudgeConsistencyReward, JudgeThinkReward, fill


class Scripted:
    """Replies chosen by a marker word in the reasoning; records every conversation it is sent."""

    def __init__(self, replies: dict[str, str | None]) -> None:
        self.replies = replies
        self.sent: list[list[dict]] = []

    def complete(self, prompts):
        self.sent.extend(prompts)
        out = []
        for messages in prompts:
            user = messages[-1]["content"]
            out.append(next((r for marker, r in self.replies.items() if marker in user), "no marker"))
        return out


THINK_SCRIPT = {"GOOD": "Score: 0.87", "WEAK": "I'd say 2/10", "NOISE": "lorem ipsum", "LOST": None}


def think(marker: str, answer: str = "B") -> str:
    return f"<think>The bowed tone is {marker}.</think><answer>{answer}</answer>"


def test_think_scores_rounding_fallback_and_batch_mean(make_inputs, violin):
    judge = Scripted(THINK_SCRIPT)
    term = JudgeThinkReward(judge)
    texts = [think("GOOD"), think("WEAK", "A"), think("NOISE"), "<answer>B</answer>", "oops <answer>B</answer>"]
    values = term.score(make_inputs(texts, violin))
    # 0.87 -> 0.9; 2/10 -> 0.2 (wrong answers are scored too); garbage -> fallback 0.5;
    # no-think -> mean of the think values (0.9 + 0.2 + 0.5) / 3; malformed -> 0
    assert values == pytest.approx([0.9, 0.2, 0.5, 1.6 / 3, 0.0])
    assert len(judge.sent) == 3  # only think-mode completions are sent
    assert term.metrics() == {"judge/failures": 1.0, "judge/cache_hits": 0.0}


def test_think_without_any_thinking_in_the_batch(make_inputs, violin):
    judge = Scripted(THINK_SCRIPT)
    term = JudgeThinkReward(judge, fallback_score=0.3)
    assert term.score(make_inputs(["<answer>B</answer>", "<answer>A</answer>"], violin)) == [0.3, 0.3]
    assert judge.sent == []


def test_think_nan_fallback_is_left_out_of_the_mean(make_inputs, violin):
    term = JudgeThinkReward(Scripted(THINK_SCRIPT), fallback_score=float("nan"))
    values = term.score(make_inputs([think("GOOD"), think("LOST"), "<answer>B</answer>"], violin))
    # no reply -> NaN (not applicable); no-think -> mean of the judged ones only: 0.9
    assert values[0] == pytest.approx(0.9) and math.isnan(values[1]) and values[2] == pytest.approx(0.9)
    assert term.metrics()["judge/failures"] == 1.0


CONSISTENCY_SCRIPT = {"AGREE": "Yes.", "CONTRA": "No, it argues for piano.", "VAGUE": "Hmm, hard to say"}


def test_consistency_applies_to_correct_answers_only(make_inputs, violin):
    judge = Scripted(CONSISTENCY_SCRIPT)
    term = JudgeConsistencyReward(judge)
    texts = [
        think("AGREE"),  # correct, consistent -> 1
        think("CONTRA"),  # correct, inconsistent -> 0
        think("VAGUE"),  # correct, unreadable verdict -> fallback 1.0
        "<answer>violin</answer>",  # correct, no-think -> 1 without asking
        think("AGREE", "A"),  # wrong -> NaN
        "<answer>A</answer>",  # wrong no-think -> NaN
        "<think>AGREE</think>! <answer>B</answer>",  # malformed -> NaN
    ]
    values = term.score(make_inputs(texts, violin))
    assert values[:4] == [1.0, 0.0, 1.0, 1.0]
    assert values[4:] == [None, None, None]
    assert len(judge.sent) == 3 and term.metrics() == {"judge/failures": 1.0, "judge/cache_hits": 0.0}


def test_consistency_custom_fallback(make_inputs, violin):
    term = JudgeConsistencyReward(Scripted(CONSISTENCY_SCRIPT), fallback_score=0.0)
    assert term.score(make_inputs([think("VAGUE")], violin)) == [0.0]


def test_prompt_carries_question_options_reasoning_answer(make_inputs, violin):
    judge = Scripted(CONSISTENCY_SCRIPT)
    JudgeConsistencyReward(judge, system_prompt="Be strict.").score(make_inputs([think("AGREE")], violin))
    (messages,) = judge.sent
    assert [m["role"] for m in messages] == ["system", "user"] and messages[0]["content"] == "Be strict."
    user = messages[1]["content"]
    for part in ("Which instrument plays the melody?", "A. piano\nB. violin\nC. drums", "bowed tone is AGREE", "B"):
        assert part in user
    assert "{" not in user  # every placeholder filled


def test_custom_rubric_keeps_other_braces():
    assert fill('Reply as {"score": x}. Q: {question}', {"question": "why?"}) == 'Reply as {"score": x}. Q: why?'


def test_cache_hits_skip_the_judge(make_inputs, violin):
    judge = Scripted(THINK_SCRIPT)
    term = JudgeThinkReward(judge, cache=JudgeCache())
    inputs = make_inputs([think("GOOD"), think("NOISE")], violin)
    first = term.score(inputs)
    second = term.score(inputs)
    assert first == second == pytest.approx([0.9, 0.5])
    assert len(judge.sent) == 2  # the second call sent nothing; the garbage reply was cached too
    assert term.metrics() == {"judge/failures": 1.0, "judge/cache_hits": 2.0}


def test_judge_must_have_complete():
    with pytest.raises(TypeError, match="complete"):
        JudgeThinkReward(judge="http://localhost:8000")
