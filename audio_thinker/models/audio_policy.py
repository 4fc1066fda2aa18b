"""The audio families of `Policy`: Qwen2-Audio (a Whisper-style encoder + projector) and the Qwen2.5-Omni thinker.

Each encodes a prompt's clips once (`encode_prompts`) and scatters the audio embeddings into the prompt's
placeholder slots (`embed_prompts`); generation and scoring are `Policy`'s own.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from transformers.masking_utils import create_bidirectional_mask

from audio_thinker.models.policy import Policy, PromptEncoding


class Qwen2AudioPolicy(Policy):
    """Qwen2-Audio: a Whisper-style encoder + projector whose outputs replace the <|AUDIO|> placeholders."""

    has_audio = True
    placeholder_tokens = ("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")

    def special_token_ids(self) -> list[int]:
        names = self.placeholder_tokens
        ids = [self.tokenizer.convert_tokens_to_ids(name) for name in names]
        return [i for i in ids if i is not None and i != self.tokenizer.unk_token_id]

    @property
    def audio_token_id(self) -> int:
        return self.hf_model.config.audio_token_id

    def audio_modules(self) -> list[nn.Module]:
        """The modules that turn features into audio embeddings."""
        inner = self.hf_model.model
        return [inner.audio_tower, inner.multi_modal_projector]

    def audio_trainable(self) -> bool:
        return any(p.requires_grad for m in self.audio_modules() for p in m.parameters())

    def encode_prompts(self, prompts: list[str], audios: list[np.ndarray] | None = None) -> PromptEncoding:
        if audios is None:
            return super().encode_prompts(prompts)
        rate = self.processor.feature_extractor.sampling_rate
        batch = self.processor(text=prompts, audio=audios, sampling_rate=rate, return_tensors="pt", padding=True)
        encoding = PromptEncoding(
            batch["input_ids"].to(self.device),
            batch["attention_mask"].to(self.device),
            input_features=batch["input_features"].to(self.device),
            feature_attention_mask=batch["feature_attention_mask"].to(self.device),
        )
        with torch.no_grad():  # the one encoder pass of the step; reused by generation and every log-prob pass
            encoding.audio_embeds = self.encode_audio(encoding)
        encoding.audio_lengths = (encoding.input_ids == self.audio_token_id).sum(dim=1)
        return encoding

    def encode_audio(self, encoding: PromptEncoding, tower: nn.Module | None = None) -> torch.Tensor:
        """Run the audio tower (or another `tower` of the same class and weights) and projector: [A, H], one row per
        placeholder token."""
        inner = self.hf_model.model
        tower = tower or inner.audio_tower
        features, feature_mask = encoding.input_features, encoding.feature_attention_mask
        conv_lengths, out_lengths = tower._get_feat_extract_output_lengths(feature_mask.sum(-1))
        # Mask padded encoder frames exactly as transformers' own Qwen2AudioModel.forward does.
        frames = (features.shape[-1] - 2) // 2 + 1
        valid = torch.arange(frames, device=features.device)[None, :] < conv_lengths[:, None]  # [B, frames]
        dtype = tower.conv1.weight.dtype
        mask = create_bidirectional_mask(
            config=tower.config,
            inputs_embeds=torch.zeros(valid.shape + (1,), dtype=dtype, device=features.device),
            attention_mask=valid.long(),
        )
        hidden = tower(features, attention_mask=mask)
        audio = inner.multi_modal_projector(hidden.last_hidden_state)  # [B, T_audio, H]
        keep = torch.arange(audio.shape[1], device=audio.device)[None, :] < out_lengths[:, None]
        return audio[keep]  # [A, H]

    def embed_prompts(
        self, encoding: PromptEncoding, reencode_audio: bool = False, lm: nn.Module | None = None
    ) -> torch.Tensor:
        embeds = super().embed_prompts(encoding, lm=lm)  # [B, P, H]
        if encoding.audio_embeds is None:
            return embeds
        audio = self.encode_audio(encoding) if reencode_audio else encoding.audio_embeds
        slots = (encoding.input_ids == self.audio_token_id).unsqueeze(-1)
        if int(slots.sum()) != audio.shape[0]:
            raise ValueError(f"prompt has {int(slots.sum())} audio placeholder tokens but {audio.shape[0]} features")
        return embeds.masked_scatter(slots, audio.to(embeds.dtype))


class Qwen2_5OmniThinkerPolicy(Qwen2AudioPolicy):
    """The Qwen2.5-Omni thinker, audio only: its encoder (with its own projection) fills the <|AUDIO|> slots.

    For audio without video, Omni's 3-D rotary positions are the plain sequential positions on all three axes,
    so the shared position rule (cumulative sum of the attention mask) is exact.
    """

    placeholder_tokens = (
        "<|AUDIO|>",
        "<|audio_bos|>",
        "<|audio_eos|>",
        "<|IMAGE|>",
        "<|VIDEO|>",
        "<|vision_bos|>",
        "<|vision_eos|>",
    )

    def audio_modules(self) -> list[nn.Module]:
        return [self.hf_model.model.audio_tower]

    def generate(
        self, encoding: PromptEncoding, group_size: int, lm: nn.Module | None = None, **sampling
    ) -> torch.Tensor:
        # transformers keeps the last generation's rope deltas on the model and reuses them when a cache is given:
        # after a batch of another size (validation's), they no longer fit.
        self.hf_model.model.rope_deltas = None
        return super().generate(encoding, group_size, lm, **sampling)

    def encode_audio(self, encoding: PromptEncoding) -> torch.Tensor:
        features = self.hf_model.model.get_audio_features(
            encoding.input_features, feature_attention_mask=encoding.feature_attention_mask
        )
        return features.last_hidden_state  # [A, H], already packed clip after clip
