"""The format warm start: answers in the prompt's own style, and a pool of encodings batched like one call."""

from __future__ import annotations

import numpy as np
import torch

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.embedded.format_warm_start import format_completion, stack_encodings
from audio_thinker.format.prompts import THINK
from audio_thinker.models.loading import load_policy
from audio_thinker.models.policy import render_prompts


def test_the_answer_is_a_letter_for_lettered_options_and_the_words_otherwise():
    example = SyntheticAudioQA(size=1)[0]  # pitch_compare: "the first tone" / "the second tone"
    for letters in (True, False):
        rng = np.random.default_rng(3)
        text = format_completion(example, rng, think=True, letters=letters)
        answer = text.split("<answer>")[1].split("</answer>")[0]
        expected = [chr(ord("A") + i) for i in range(2)] if letters else example.choices
        assert text.startswith("<think>") and answer in expected


def test_stacked_encodings_score_like_one_batched_encoding():
    policy = load_policy("tiny-qwen2-audio")
    examples = [SyntheticAudioQA(size=5)[i] for i in (0, 4)]  # different clip and prompt lengths
    prompts = render_prompts(policy, examples, THINK)
    batched = policy.encode_prompts(prompts, [e.audio for e in examples])
    singles = [policy.encode_prompts([p], [e.audio]) for p, e in zip(prompts, examples, strict=True)]
    stacked = stack_encodings(singles, policy.tokenizer.pad_token_id)
    assert torch.equal(stacked.attention_mask, batched.attention_mask)
    assert torch.equal(stacked.audio_lengths, batched.audio_lengths)
    ids = torch.tensor([[5, 6, 7], [8, 9, 10]])
    mask = torch.ones_like(ids)
    assert torch.allclose(
        policy.completion_logps(stacked, ids, mask), policy.completion_logps(batched, ids, mask), atol=1e-5
    )
