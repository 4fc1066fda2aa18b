"""An audio-only processor: tokenizer + Whisper feature extractor, for models whose full processor wants more.

Qwen2.5-Omni's own processor also handles images and video and needs torchvision. For audio questions we only
need what Qwen2-Audio's processor does: featurise the waveform and expand each `<|AUDIO|>` placeholder to as
many tokens as the encoder will produce. The call signature matches transformers processors, so `Policy` code
is the same for every family.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, BatchFeature, WhisperFeatureExtractor


def audio_token_count(feature_frames: torch.Tensor) -> torch.Tensor:
    """Encoder output length for each clip: two stride-2 stages over the mel frames (Qwen2-Audio and Omni)."""
    after_conv = (feature_frames - 1) // 2 + 1
    return (after_conv - 2) // 2 + 1


class AudioTextProcessor:
    """Tokenizer + feature extractor with the `processor(text=, audio=)` interface of transformers processors."""

    def __init__(self, tokenizer, feature_extractor: WhisperFeatureExtractor, audio_token: str = "<|AUDIO|>") -> None:
        self.tokenizer, self.feature_extractor, self.audio_token = tokenizer, feature_extractor, audio_token

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> AudioTextProcessor:
        """Load both parts from one directory (or hub id)."""
        return cls(AutoTokenizer.from_pretrained(path, **kwargs), WhisperFeatureExtractor.from_pretrained(path))

    def save_pretrained(self, path: str | Path) -> None:
        """Save both parts into one directory."""
        self.tokenizer.save_pretrained(path)
        self.feature_extractor.save_pretrained(path)

    def apply_chat_template(self, messages: list[dict], **kwargs):
        """The tokenizer's chat template."""
        return self.tokenizer.apply_chat_template(messages, **kwargs)

    def __call__(
        self, text: list[str], audio: list[np.ndarray], sampling_rate: int, return_tensors: str = "pt", padding=True
    ) -> BatchFeature:
        """Features for each clip and token ids with each placeholder expanded to the clip's token count."""
        if len(text) != len(audio) or any(t.count(self.audio_token) != 1 for t in text):
            raise ValueError(f"each prompt needs exactly one {self.audio_token} for its one audio clip")
        features = self.feature_extractor(
            audio, sampling_rate=sampling_rate, return_tensors="pt", padding="max_length", return_attention_mask=True
        )
        counts = audio_token_count(features["attention_mask"].sum(-1)).tolist()
        expanded = [t.replace(self.audio_token, self.audio_token * n) for t, n in zip(text, counts, strict=True)]
        tokens = self.tokenizer(expanded, return_tensors="pt", padding=padding, add_special_tokens=False)
        return BatchFeature(
            {
                "input_ids": tokens["input_ids"],
                "attention_mask": tokens["attention_mask"],
                "input_features": features["input_features"],
                "feature_attention_mask": features["attention_mask"],
            }
        )
