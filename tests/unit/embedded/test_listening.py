"""The listening warm start: its short-window encoder view computes what the full 30 s encoder computes, its
reasoning targets answer what their description says, and its hesitations are padding that CESAR pays nothing for."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from transformers import Qwen2AudioEncoder, Qwen2AudioEncoderConfig

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.embedded.architecture import _audio_encoder_config, keep_signal
from audio_thinker.embedded.format_warm_start import HESITATIONS, hesitation
from audio_thinker.embedded.listening import listening_pool, reasoning_completion, window_processor, window_view
from audio_thinker.models.policy import PromptEncoding
from audio_thinker.rewards.keywords import KeywordReward


def _encoding(processor, prompt: str, audios) -> PromptEncoding:
    batch = processor(
        text=[prompt] * len(audios), audio=audios, sampling_rate=16_000, return_tensors="pt", padding=True
    )
    return PromptEncoding(
        batch["input_ids"],
        batch["attention_mask"],
        input_features=batch["input_features"],
        feature_attention_mask=batch["feature_attention_mask"],
    )


@pytest.mark.parametrize("seconds", [2, 4])
def test_the_window_view_encodes_short_clips_as_the_full_encoder_does(tiny_policy, seconds):
    policy = tiny_policy
    audios = [SyntheticAudioQA(2, seed=3)[i].audio for i in range(2)]  # 1.9 s and 1.9 s
    audios[1] = audios[1][: len(audios[1]) // 2]  # clips of different lengths: padding masked in both
    prompt = "<|im_start|>user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nhi<|im_end|>\n"
    full = _encoding(policy.processor, prompt, audios)
    short = _encoding(window_processor(policy, seconds), prompt, audios)
    assert full.input_features.shape[-1] == 3000 and short.input_features.shape[-1] == seconds * 100
    assert torch.equal(full.input_ids, short.input_ids)  # as many audio tokens per clip in both windows
    view = window_view(policy.hf_model.model.audio_tower, seconds)
    with torch.no_grad():
        expected, got = policy.encode_audio(full), policy.encode_audio(short, view)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    # The view shares the encoder's modules: training it trains the model's own encoder.
    assert view.conv1 is policy.hf_model.model.audio_tower.conv1
    assert view.layers is policy.hf_model.model.audio_tower.layers


def test_each_reasoning_target_answers_what_its_description_says():
    for example in listening_pool(size=64):
        first, second = re.fullmatch(r"a (\w+) tone, then a (\w+) tone", example.meta["caption"]).groups()
        assert {first, second} in ({"low", "high"}, {"soft", "loud"})
        winner = "the second tone" if second in ("high", "loud") else "the first tone"
        assert example.answer == winner
        assert (
            reasoning_completion(example)
            == f"<think>I hear {example.meta['caption']}.</think><answer>{winner}</answer>"
        )


def test_hesitations_are_padding_that_cesar_pays_no_keyword_for():
    rng = np.random.default_rng(0)
    pauses = [hesitation(rng) for _ in range(1000)]
    counts = np.array([sum(p.count(h) for h in ("Wait.", "Okay.", "Well.")) + p.count("Wait, wait.") for p in pauses])
    assert set(counts) == {0, 1, 2, 3} and 0.45 < np.mean(counts == 0) < 0.55  # none half of the time
    reward, said = KeywordReward(), "I hear a low tone, then a high tone."
    for pause in ["".join(h + " " for h in HESITATIONS), *set(pauses)]:
        assert reward.breakdown(pause + said) == reward.breakdown(said)


def test_keep_signal_initialises_the_encoder_as_a_real_checkpoint():
    torch.manual_seed(0)
    tower = Qwen2AudioEncoder(Qwen2AudioEncoderConfig(**_audio_encoder_config(4)))
    keep_signal(tower)
    for conv in (tower.conv1, tower.conv2):
        fan_in = conv.in_channels * conv.kernel_size[0]
        assert abs(conv.weight.std().item() - (2 / fan_in) ** 0.5) < 0.05 * (2 / fan_in) ** 0.5
        assert not conv.bias.any()
    positions = tower.embed_positions.weight  # Whisper's sinusoids: sin(t / 10000^(i / 31)), then the cosines
    t, i = 37, 5
    assert positions[t, i].item() == pytest.approx(math.sin(t / 10000 ** (i / 31)), abs=1e-5)
    assert positions[t, 32 + i].item() == pytest.approx(math.cos(t / 10000 ** (i / 31)), abs=1e-5)
    assert not positions.requires_grad  # frozen, as transformers keeps them
