"""The embedded model can hear: a supervised probe learns `pitch_compare` from the sound, and not from silence.

Not the GRPO learning test the default run still lacks (README, "What it learns"): a guard that the audio path
of the embedded model carries the answer at all. Correct answers as targets (think format, option words), the
audio encoder frozen, fixed seeds; held-out greedy accuracy graded as validation grades it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from audio_thinker.data.controls import AudioControl
from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.eval.validation import Validator, validation_metrics
from audio_thinker.format.prompts import THINK
from audio_thinker.models.loading import load_policy
from audio_thinker.models.policy import render_prompts
from audio_thinker.models.warm_start import right_padded, stack_encodings

TASK = dict(tasks=["pitch_compare"], difficulties=["easy", "medium"])


def probe_accuracy(control: str | None, steps: int = 400) -> tuple[float, float]:
    """Held-out accuracy (before, after) of `steps` supervised steps on 256 examples (batch 8, lr 3e-3)."""
    torch.manual_seed(0)
    policy = load_policy("tiny-qwen2-audio")
    template = replace(THINK, letter_options=False)
    train, val = SyntheticAudioQA(256, seed=0, **TASK), SyntheticAudioQA(48, seed=100003, **TASK)
    if control:
        train, val = AudioControl(train, control, seed=0), AudioControl(val, control, seed=1)
    examples, held_out = [train[i] for i in range(len(train))], [val[i] for i in range(len(val))]
    encodings = [policy.encode_prompts(render_prompts(policy, [e], template), [e.audio]) for e in examples]
    validator = Validator(template)

    def accuracy() -> float:
        policy.hf_model.eval()
        value = validation_metrics(validator.grade(policy, held_out))["val/accuracy"]
        policy.hf_model.train()
        return value

    before = accuracy()
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=3e-3)
    eos = policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    rng = np.random.default_rng(0)
    for _ in range(steps):
        batch = rng.integers(len(examples), size=8)
        targets = [f"<think>It is {examples[i].answer}.</think><answer>{examples[i].answer}</answer>" for i in batch]
        ids, mask = right_padded([policy.tokenizer(t, add_special_tokens=False)["input_ids"] + [eos] for t in targets])
        encoding = stack_encodings([encodings[i] for i in batch], policy.tokenizer.pad_token_id)
        loss = -(policy.completion_logps(encoding, ids, mask) * mask).sum() / mask.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return before, accuracy()


@pytest.mark.slow
def test_the_embedded_model_learns_pitch_from_the_sound_and_not_from_silence():
    before, after = probe_accuracy(None)
    assert before < 0.6 and after >= 0.75, (before, after)  # measured: 0.44 -> 0.83
    _, silent = probe_accuracy("silence")
    assert silent <= 0.6, silent  # one answer for every question: the majority share of 48 held-out examples
