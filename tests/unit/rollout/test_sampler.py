"""Sampling a rollout: the stop-token mask, completions read back and parsed, and the rollout an engine's ids make."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from audio_thinker.format.prompts import THINK
from audio_thinker.format.tags import completion_text
from audio_thinker.rollout.engine import Completions, RolloutEngine, SamplingSettings
from audio_thinker.rollout.sampler import completion_mask, read_completions, sample_rollout, token_counts


class Scripted(RolloutEngine):
    """Returns the given completions (texts, tokenised by the policy) for every request; records the requests."""

    def __init__(self, texts: list[str]) -> None:
        self.texts, self.requests = texts, []

    def generate(self, policy, request):
        self.requests.append(request)
        ids = [
            policy.tokenizer(t, add_special_tokens=False)["input_ids"] + policy.stop_token_ids()[:1] for t in self.texts
        ]
        width = max(len(row) for row in ids) + 2  # padding after the stop token, as generate leaves it
        pad = policy.tokenizer.pad_token_id
        return Completions(torch.tensor([row + [pad] * (width - len(row)) for row in ids]))


def test_the_mask_covers_tokens_up_to_and_including_the_first_stop():
    ids = torch.tensor([[5, 6, 2, 7, 2], [2, 5, 5, 5, 5], [5, 5, 5, 5, 5]])
    assert completion_mask(ids, [2]).tolist() == [[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert completion_mask(ids, [2, 7]).tolist()[0] == [1, 1, 1, 0, 0]


def test_completions_are_read_back_parsed_and_counted(tiny_policy):
    texts = [completion_text("B", think="It rises."), completion_text("A"), "no tags at all"]
    read = read_completions(tiny_policy, Scripted(texts).generate(tiny_policy, None).ids)
    assert [p.mode for p in read.parsed] == ["think", "no_think", "malformed"]
    assert [p.answer for p in read.parsed] == ["B", "A", None]
    count = len(tiny_policy.tokenizer("It rises.", add_special_tokens=False)["input_ids"])
    assert read.think_lengths == [count, 0, 0] and read.answer_lengths[:2] == [1, 1]
    assert (read.mask.sum(dim=1) < read.mask.shape[1]).all()  # the padding after each stop token is masked


def test_batched_token_counts_equal_one_text_at_a_time(tiny_policy):
    tokenizer = tiny_policy.tokenizer
    texts = ["The tone rises, then falls.", None, "", "B", "a much longer reasoning about the second sound " * 5]
    alone = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) if t else 0 for t in texts]
    assert token_counts(tokenizer, texts) == alone
    assert alone[0] > 1 and alone[4] > alone[0]  # real counts, not a fixed width
    assert token_counts(tokenizer, [None, ""]) == [0, 0]


def test_a_rollout_aligns_each_examples_g_completions(tiny_policy, val_examples):
    examples = val_examples[:2]
    texts = [completion_text("B", think="x"), completion_text("A"), completion_text("C"), "junk"]
    engine = Scripted(texts)
    sampling = SamplingSettings(temperature=0.7, max_new_tokens=8)
    rollout = sample_rollout(tiny_policy, examples, THINK, 2, sampling, engine, num_micro_batches=2)
    (request,) = engine.requests
    assert request.group_size == 2 and len(request.prompts) == 2 and len(request.audios) == 2
    assert rollout.examples == examples and rollout.size == 4 and rollout.num_micro_batches == 2
    assert [c.answer for c in rollout.completions] == ["B", "A", "C", None]
    assert rollout.temperature == 0.7 and rollout.advantages is None and rollout.sampling_logps is None
    assert rollout.encoding.input_ids.shape[0] == 2  # one encoded prompt per example, not per completion


def test_an_audio_policy_refuses_examples_without_audio(tiny_policy, val_examples):
    silent = replace(val_examples[0], audio=None)
    with pytest.raises(ValueError, match=rf"examples \['{silent.id}'\] have no audio"):
        sample_rollout(tiny_policy, [silent], THINK, 2, SamplingSettings(), Scripted(["x", "y"]))
