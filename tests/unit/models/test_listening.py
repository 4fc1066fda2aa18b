"""The listening warm start: its short-window encoder view computes what the full 30 s encoder computes."""

from __future__ import annotations

import torch

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.models.listening import window_processor, window_view
from audio_thinker.models.policy import PromptEncoding


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


def test_the_window_view_encodes_short_clips_as_the_full_encoder_does(tiny_policy):
    policy = tiny_policy
    audios = [SyntheticAudioQA(2, seed=3)[i].audio for i in range(2)]  # 1.9 s and 1.9 s
    audios[1] = audios[1][: len(audios[1]) // 2]  # clips of different lengths: padding masked in both
    prompt = "<|im_start|>user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nhi<|im_end|>\n"
    full = _encoding(policy.processor, prompt, audios)
    short = _encoding(window_processor(policy, 4), prompt, audios)
    assert full.input_features.shape[-1] == 3000 and short.input_features.shape[-1] == 400
    assert torch.equal(full.input_ids, short.input_ids)  # as many audio tokens per clip in both windows
    view = window_view(policy.hf_model.model.audio_tower, 4)
    with torch.no_grad():
        expected, got = policy.encode_audio(full), policy.encode_audio(short, view)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    # The view shares the encoder's modules: training it trains the model's own encoder.
    assert view.conv1 is policy.hf_model.model.audio_tower.conv1
    assert view.layers is policy.hf_model.model.audio_tower.layers
