"""The judge terms with a scripted backend: what is judged, parsing, the failure policy, counts, the stop rule."""

from __future__ import annotations

import logging

import pytest

from audio_thinker.rewards.judge.cache import JudgeCache
from audio_thinker.rewards.judge.protocol import JudgeUnavailable
from audio_thinker.rewards.judge.scores import VERDICT_GRAMMAR
from audio_thinker.rewards.judge.terms import JudgeConsistencyReward, JudgeTerm, JudgeThinkReward, fill
from audio_thinker.rewards.suite import RewardSuite


class Scripted:
    """Replies chosen by a marker word in the reasoning; records every conversation and grammar it is sent."""

    def __init__(self, replies: dict[str, str | None]) -> None:
        self.replies = replies
        self.sent: list[list[dict]] = []
        self.grammars: list = []

    def complete(self, prompts, grammar=None):
        self.sent.extend(prompts)
        self.grammars.append(grammar)
        out = []
        for messages in prompts:
            user = messages[-1]["content"]
            out.append(next((r for marker, r in self.replies.items() if marker in user), "no marker"))
        return out


THINK_SCRIPT = {"GOOD": "9", "WEAK": "Score: 2/10", "NOISE": "lorem ipsum", "LOST": None, "OFF": "1.5"}


def think(marker: str, answer: str = "B") -> str:
    return f"<think>The bowed tone is {marker}.</think><answer>{answer}</answer>"


def test_think_scores_batch_mean_for_failures_and_direct_answers(make_inputs, violin):
    judge = Scripted(THINK_SCRIPT)
    term = JudgeThinkReward(judge)
    texts = [think("GOOD"), think("WEAK", "A"), think("NOISE"), think("LOST"), "<answer>B</answer>", "x<answer>B"]
    values = term.score(make_inputs(texts, violin))
    # 9 -> 0.9; 2/10 -> 0.2 (wrong answers are scored too); garbage and no reply fail and get the mean of the
    # successful judgments (0.9 + 0.2) / 2 = 0.55, never more than a real judgment on average; no-think: the same
    # mean; malformed: NaN (nothing to judge)
    assert values[:5] == pytest.approx([0.9, 0.2, 0.55, 0.55, 0.55]) and values[5] is None
    assert len(judge.sent) == 4 and judge.grammars[0].choices == tuple(str(n) for n in range(11))
    assert term.metrics() == {
        "judge/calls": 4.0,
        "judge/requests": 4.0,
        "judge/cache_hits": 0.0,
        "judge/transport_failures": 1.0,
        "judge/parse_failures": 1.0,
        "judge/failures": 2.0,
        "judge/seconds": pytest.approx(0.0, abs=0.5),
        "judge/JudgeThinkReward/failure_rate": 0.5,
    }


def test_a_score_off_the_scale_is_a_parse_failure(make_inputs, violin):
    term = JudgeThinkReward(Scripted(THINK_SCRIPT), on_failure="skip")
    values = term.score(make_inputs([think("OFF"), think("GOOD")], violin))
    assert values[0] is None and values[1] == pytest.approx(0.9)  # "1.5" is not read as 0.15
    assert term.metrics()["judge/parse_failures"] == 1.0


def test_nothing_judged_logs_nothing_that_looks_like_judging(make_inputs, violin):
    judge = Scripted(THINK_SCRIPT)
    term = JudgeThinkReward(judge)
    values = term.score(make_inputs(["<answer>B</answer>", "<answer>A</answer>"], violin))
    assert values == [None, None] and judge.sent == []  # no think -> no judge call, no value
    metrics = term.metrics()
    assert metrics["judge/calls"] == 0.0 and not any(k.endswith("failure_rate") for k in metrics)


def test_skip_policy_leaves_failures_out(make_inputs, violin):
    term = JudgeThinkReward(Scripted(THINK_SCRIPT), on_failure="skip")
    values = term.score(make_inputs([think("GOOD"), think("LOST"), "<answer>B</answer>"], violin))
    # no reply -> NaN (not applicable); no-think -> mean of the judged ones only: 0.9
    assert values[0] == pytest.approx(0.9) and values[1] is None and values[2] == pytest.approx(0.9)


CONSISTENCY_SCRIPT = {"AGREE": "Yes", "CONTRA": "No, it argues for piano.", "VAGUE": "Hmm, hard to say", "DOWN": None}


def test_consistency_applies_to_correct_answers_only(make_inputs, violin):
    judge = Scripted(CONSISTENCY_SCRIPT)
    term = JudgeConsistencyReward(judge)
    texts = [
        think("AGREE"),  # correct, consistent -> 1
        think("CONTRA"),  # correct, inconsistent -> 0
        think("VAGUE"),  # correct, unreadable verdict -> mean of the judged verdicts (1 + 0) / 2
        "<answer>violin</answer>",  # correct, no-think -> 1 without asking
        think("AGREE", "A"),  # wrong -> NaN
        "<answer>A</answer>",  # wrong no-think -> NaN
        "<think>AGREE</think>! <answer>B</answer>",  # malformed -> NaN
    ]
    values = term.score(make_inputs(texts, violin))
    assert values[:4] == [1.0, 0.0, 0.5, 1.0]
    assert values[4:] == [None, None, None]
    assert len(judge.sent) == 3 and judge.grammars == [VERDICT_GRAMMAR]
    assert term.metrics()["judge/parse_failures"] == 1.0


def test_a_dead_judge_never_pays_consistency(make_inputs, violin):
    # Before: a failure paid R_c = 1.0, so a judge that was down made every correct reasoning "consistent".
    term = JudgeConsistencyReward(Scripted(CONSISTENCY_SCRIPT))
    values = term.score(make_inputs([think("DOWN"), think("DOWN")], violin))
    assert values == [None, None]  # NaN: no bonus under AudioThinkerCombiner, R = R_a + 0.5 R_f + R_t
    assert term.metrics()["judge/transport_failures"] == 2.0


def test_identical_prompts_in_a_batch_are_sent_once(make_inputs, violin):
    judge = Scripted(THINK_SCRIPT)
    term = JudgeThinkReward(judge)
    values = term.score(make_inputs([think("GOOD")] * 4 + [think("WEAK")], violin))
    assert values == pytest.approx([0.9] * 4 + [0.2])
    assert len(judge.sent) == 2
    assert term.metrics()["judge/calls"] == 5.0 and term.metrics()["judge/requests"] == 2.0


def test_prompt_carries_question_options_reasoning_answer(make_inputs, violin):
    judge = Scripted(CONSISTENCY_SCRIPT)
    JudgeConsistencyReward(judge, system_prompt="Be strict.").score(make_inputs([think("AGREE")], violin))
    (messages,) = judge.sent
    assert [m["role"] for m in messages] == ["system", "user"] and messages[0]["content"] == "Be strict."
    user = messages[1]["content"]
    for part in ("Which instrument plays the melody?", "A. piano\nB. violin\nC. drums", "bowed tone is AGREE", "B"):
        assert part in user
    assert "{" not in user  # every placeholder filled


def test_think_rubric_states_the_scale(make_inputs, violin):
    judge = Scripted({"GOOD": "4"})
    term = JudgeThinkReward(judge, scale=5)
    assert term.score(make_inputs([think("GOOD")], violin)) == pytest.approx([0.8])
    assert "from 0 (worthless) to 5 (excellent)" in judge.sent[0][-1]["content"]
    assert judge.grammars[0].choices == ("0", "1", "2", "3", "4", "5")


def test_unconstrained_sends_no_grammar(make_inputs, violin):
    judge = Scripted(THINK_SCRIPT)
    JudgeThinkReward(judge, constrain=False).score(make_inputs([think("GOOD")], violin))
    assert judge.grammars == [None]


def test_a_backend_that_ignores_the_grammar_is_read_by_the_regex(make_inputs, violin):
    class FreeText:
        def complete(self, prompts, grammar=None):  # cannot constrain its output
            return ["Score: 7/10"] * len(prompts)

    term = JudgeThinkReward(FreeText())
    assert term.score(make_inputs([think("GOOD")], violin)) == pytest.approx([0.7])


def test_a_judge_term_implements_grammar_parse_and_score_batch():
    class Unfinished(JudgeTerm):
        def grammar(self):
            return VERDICT_GRAMMAR

    with pytest.raises(TypeError, match="abstract"):
        Unfinished(Scripted({}))


def test_custom_rubric_keeps_other_braces():
    assert fill('Reply as {"score": x}. Q: {question}', {"question": "why?"}) == 'Reply as {"score": x}. Q: why?'


def test_cache_hits_skip_the_judge(make_inputs, violin):
    judge = Scripted(THINK_SCRIPT)
    term = JudgeThinkReward(judge, cache=JudgeCache())
    inputs = make_inputs([think("GOOD"), think("NOISE")], violin)
    first = term.score(inputs)
    second = term.score(inputs)
    assert first == second == pytest.approx([0.9, 0.9])  # garbage -> the mean of the judged: 0.9
    assert len(judge.sent) == 2  # the second call sent nothing; the garbage reply was cached too
    assert term.metrics()["judge/cache_hits"] == 2.0 and term.metrics()["judge/requests"] == 0.0


def test_exchanges_keep_prompt_and_reply_for_logged_samples(make_inputs, violin):
    term = JudgeThinkReward(Scripted(THINK_SCRIPT))
    term.score(make_inputs([think("GOOD"), think("NOISE")], violin))
    assert [(e["reply"], e["value"]) for e in term.exchanges] == [("9", 0.9), ("lorem ipsum", None)]
    assert "bowed tone is GOOD" in term.exchanges[0]["prompt"]


def test_one_summary_line_per_step_and_the_run_stops_past_the_failure_limit(make_inputs, violin, caplog):
    term = JudgeThinkReward(Scripted(THINK_SCRIPT), max_failure_rate=0.5, failure_window=4)
    term.name = "judge_think"
    with caplog.at_level(logging.WARNING):
        term.score(make_inputs([think("GOOD"), think("LOST")], violin))  # 1 of 2 failed; window not full yet
    assert len(caplog.records) == 1 and "1 of 2 judgments failed" in caplog.text
    term.score(make_inputs([think("GOOD"), think("WEAK")], violin))  # window [F, ok, ok, ok]: 1/4
    term.score(make_inputs([think("LOST"), think("GOOD")], violin))  # window [ok, ok, F, ok]: 1/4
    with pytest.raises(JudgeUnavailable, match=r"3 of the last 4 judgments failed.*judge_think.max_failure_rate"):
        term.score(make_inputs([think("LOST"), think("NOISE")], violin))  # [F, ok, F, F]: 3/4 > 0.5


def test_stop_is_raised_as_is_through_the_suite(make_inputs, violin):
    suite = RewardSuite({"judge_think": JudgeThinkReward(Scripted(THINK_SCRIPT), failure_window=1)})
    with pytest.raises(JudgeUnavailable):  # not re-run per example, not wrapped
        suite(make_inputs([think("LOST"), think("LOST")], violin))


def test_start_check_runs_once_before_judging(make_inputs, violin):
    class Checked(Scripted):
        checks = 0

        def check(self):
            self.checks += 1

    judge = Checked(THINK_SCRIPT)
    term = JudgeThinkReward(judge)
    RewardSuite({"judge_think": term}).setup()
    term.score(make_inputs([think("GOOD")], violin))
    assert judge.checks == 1


def test_bad_settings_fail_naming_the_key():
    with pytest.raises(ValueError, match="on_failure"):
        JudgeThinkReward(Scripted({}), on_failure="fallback")
    with pytest.raises(TypeError, match="complete"):
        JudgeThinkReward(judge="http://localhost:8000")


class OtherRank:
    """`sum_over_step` for rank 0 of 2: adds the other rank's values; records each call (a collective)."""

    def __init__(self, other: list[float]) -> None:
        self.other, self.calls = other, 0

    def __call__(self, values):
        self.calls += 1
        return [a + b for a, b in zip(values, self.other, strict=True)]


def test_the_direct_answers_mean_is_taken_over_every_rank(make_inputs, violin):
    # Here: one judged 9 (0.9). The other rank: three judged, summing to 0.6, and no stop. Mean (0.9 + 0.6) / 4.
    inputs = make_inputs([think("GOOD"), "<answer>B</answer>"], violin)
    inputs.sum_over_step = step_sum = OtherRank([0.6, 3.0, 0.0])
    values = JudgeThinkReward(Scripted(THINK_SCRIPT)).score(inputs)
    assert values == pytest.approx([0.9, 0.375]) and step_sum.calls == 1


def test_a_judge_stop_on_another_rank_stops_this_one_too(make_inputs, violin):
    inputs = make_inputs([think("GOOD")], violin)
    inputs.sum_over_step = OtherRank([0.0, 0.0, 1.0])  # the other rank's judge passed max_failure_rate
    with pytest.raises(JudgeUnavailable, match="failed too often on another rank"):
        JudgeThinkReward(Scripted(THINK_SCRIPT)).score(inputs)
