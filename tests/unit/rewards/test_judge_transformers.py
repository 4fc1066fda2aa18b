"""The in-process judge on a tiny random Qwen2: batched greedy generation; replies with no score fall back."""

from __future__ import annotations

import pytest

from audio_thinker.rewards.judge.backends import TransformersJudge
from audio_thinker.rewards.judge.scores import parse_score
from audio_thinker.rewards.judge.terms import JudgeThinkReward


@pytest.fixture
def judge(tiny_judge_dir) -> TransformersJudge:
    return TransformersJudge(str(tiny_judge_dir), max_new_tokens=8, batch_size=2, device="cpu")


def conversation(text: str) -> list[dict]:
    return [{"role": "system", "content": "You grade reasoning."}, {"role": "user", "content": text}]


def test_batched_generation(judge, monkeypatch):
    model, _ = judge.load()
    batch_sizes = []
    generate = model.generate

    def counting_generate(**kwargs):
        batch_sizes.append(kwargs["input_ids"].shape[0])
        return generate(**kwargs)

    monkeypatch.setattr(model, "generate", counting_generate)
    replies = judge.complete([conversation(f"Rate reasoning {i}. Score:") for i in range(3)])
    assert batch_sizes == [2, 1]  # batch_size=2: two generate calls for three prompts
    assert len(replies) == 3 and all(isinstance(r, str) for r in replies)
    assert replies == judge.complete([conversation(f"Rate reasoning {i}. Score:") for i in range(3)])  # greedy


def test_default_is_the_embedded_model_and_identical_judges_share_it(judge, embedded_judge):
    default = TransformersJudge(max_new_tokens=2, device="cpu")  # model_path None -> ensure_tiny_qwen2()
    assert default._resolve()[0] == str(embedded_judge)
    assert default.load()[0] is judge.load()[0]  # one loaded copy for every judge with the same settings


def test_scoreless_replies_fall_back_and_are_counted(judge, make_inputs, violin):
    texts = [f"<think>The bowed tone number {i} rises.</think><answer>B</answer>" for i in range(3)]
    inputs = make_inputs([*texts, "<answer>B</answer>"], violin)
    term = JudgeThinkReward(judge, fallback_score=0.5)
    values = term.score(inputs)
    # The same greedy replies, parsed here: a random model is no grader, so at least one reply has no score.
    pairs = zip(inputs.completions[:3], inputs.examples[:3], strict=True)
    replies = judge.complete([term.messages(c, e) for c, e in pairs])
    parsed = [parse_score(r) for r in replies]
    failures = sum(p is None for p in parsed)
    assert failures >= 1 and term.metrics()["judge/failures"] == failures
    expected = [0.5 if p is None else round(p * 10) / 10 for p in parsed]
    assert values[:3] == pytest.approx(expected)
    assert values[3] == pytest.approx(sum(expected) / 3)  # no-think: the batch mean


def test_transcript_without_chat_template():
    class NoTemplate:
        chat_template = None

    text = TransformersJudge()._render(NoTemplate(), conversation("Rate it."))
    assert text == "System: You grade reasoning.\n\nUser: Rate it.\n\nAssistant:"
