"""A policy: a transformers model plus its processor, with the three operations GRPO needs.

1. `encode_prompts`: tokenise prompts and run the audio encoder ONCE per example.
2. `generate`: sample G completions per prompt from the cached prompt embeddings.
3. `completion_logps`: per-token log-probs of completions, reusing the same cached audio features.

Model families differ only in how audio becomes embeddings; `AudioFamily` captures that. Text-only causal LMs
are the degenerate family with no audio, so the same loop trains them (and the benchmark compares with TRL).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import DynamicCache
from transformers.cache_utils import Cache

from audio_thinker.example import AudioQAExample
from audio_thinker.format.prompts import PromptTemplate
from audio_thinker.models.decode import decode, lean_settings, logits_processors, real_token_positions
from audio_thinker.models.divergence import with_finite_scores
from audio_thinker.models.prompt_cache import (
    CACHE_KWARG,
    PromptKVLayer,
    SharedPromptLayer,
    can_share_prompt_under_checkpointing,
    replayable_cache,
)


@dataclass
class PromptEncoding:
    """Tokenised prompts [B, P] (left padded) and, for audio models, their audio features."""

    input_ids: torch.Tensor  # [B, P]
    attention_mask: torch.Tensor  # [B, P]
    audio_embeds: torch.Tensor | None = None  # [A, H]: one row per audio placeholder token, in order
    input_features: torch.Tensor | None = None  # [B, mel, frames]: kept to re-encode when the encoder trains
    feature_attention_mask: torch.Tensor | None = None  # [B, frames]
    audio_lengths: torch.Tensor | None = None  # [B] rows of `audio_embeds` that belong to each prompt

    def select(self, rows: range) -> PromptEncoding:
        """The encoding of a contiguous run of prompts, with the left-padding columns they all share dropped."""
        mask = self.attention_mask[rows.start : rows.stop]
        real = mask.sum(dim=1)
        first = self.attention_mask.shape[1] - (int(real.max()) if real.numel() else 0)  # left padded
        audio = self.audio_embeds
        if audio is not None and len(rows) != self.input_ids.shape[0]:
            if self.audio_lengths is None:
                raise ValueError("PromptEncoding.select needs audio_lengths to split packed audio_embeds")
            offsets = torch.cat([self.audio_lengths.new_zeros(1), self.audio_lengths.cumsum(0)])
            audio = audio[int(offsets[rows.start]) : int(offsets[rows.stop])]

        def take(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor[rows.start : rows.stop]

        return PromptEncoding(
            self.input_ids[rows.start : rows.stop, first:],
            mask[:, first:],
            audio,
            take(self.input_features),
            take(self.feature_attention_mask),
            take(self.audio_lengths),
        )


def activation_checkpointing(model: nn.Module) -> bool:
    """Whether gradient (activation) checkpointing is on, under the name this transformers version uses."""
    if hasattr(type(model), "is_activation_checkpointing"):  # transformers >= 5.23
        return bool(model.is_activation_checkpointing)
    return bool(getattr(model, "is_gradient_checkpointing", False))


def needed_mask(mask: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor | None:
    """`mask` when some prompt is left padded, else None: plain causal attention gives every real token the same
    result (the padding after a completion's stop comes later than every real token of its row, so causality already
    hides it), and the decoder skips building and applying a mask (~10% of a small model's log-prob passes)."""
    return None if mask.shape[0] > 1 and bool(prompt_mask.all()) else mask  # one row: flash-attn would see packing


class Policy(nn.Module):
    """A causal (audio) language model and its processor. Subclasses add audio encoding."""

    has_audio = False
    decodes_lean = True  # whether `continue_embeddings` may run the lean loop (off: always transformers `generate`)

    def __init__(self, model: nn.Module, processor) -> None:
        super().__init__()
        self.model = model
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.tokenizer.padding_side = "left"  # prompts are left padded so generation continues from the right

    # -- model anatomy --------------------------------------------------------------------------------
    @property
    def hf_model(self) -> nn.Module:
        """The transformers model, under any peft wrapper (LoRA layers stay injected and active)."""
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    @property
    def has_adapters(self) -> bool:
        """Whether the model carries peft adapters (then the reference policy is the base with them disabled)."""
        return hasattr(self.model, "disable_adapter")

    def reference_context(self):
        """A context in which forward passes give the reference (adapter-free) policy."""
        return self.model.disable_adapter() if self.has_adapters else contextlib.nullcontext()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def special_token_ids(self) -> list[int]:
        """Tokens the policy must never sample (audio placeholders would break the next forward pass)."""
        return []

    def audio_trainable(self) -> bool:
        """Whether any audio parameter trains (then cached audio embeddings cannot carry its gradient)."""
        return False

    def stop_token_ids(self) -> list[int]:
        """Token ids that end a completion."""
        ids = self.hf_model.generation_config.eos_token_id
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        return ids or [self.tokenizer.eos_token_id]

    # -- prompts --------------------------------------------------------------------------------------
    def encode_prompts(self, prompts: list[str], audios: list[np.ndarray] | None = None) -> PromptEncoding:
        """Tokenise chat-formatted prompt strings (text-only policies ignore audio)."""
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        return PromptEncoding(batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device))

    def embed_prompts(
        self, encoding: PromptEncoding, reencode_audio: bool = False, lm: nn.Module | None = None
    ) -> torch.Tensor:
        """Prompt embeddings [B, P, H] (`lm`'s token embeddings if given); audio families scatter the audio in."""
        return (lm if lm is not None else self.hf_model).get_input_embeddings()(encoding.input_ids)

    # -- generation and scoring -----------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        encoding: PromptEncoding,
        group_size: int,
        lm: nn.Module | None = None,
        sampling_logps: list[torch.Tensor] | None = None,
        **generate_kwargs,
    ) -> torch.Tensor:
        """Sample `group_size` completions per prompt: [B*G, C] token ids, padded after the stop token.

        The prompt is prefilled once per example and its KV cache repeated for the G samples, instead of
        `generate` prefilling G identical copies (a 30 s clip is ~750 prompt tokens per copy). `lm`: generate on
        another copy of the language model (a causal LM with the policy's text weights, e.g. merged adapters); the
        prompt's token embeddings are then its own and the audio comes from `encoding.audio_embeds`.
        `sampling_logps`: a list that receives the drawn tokens' log-probs, step by step (see `continue_embeddings`).
        """
        embeds, mask = self.embed_prompts(encoding, lm=lm), encoding.attention_mask
        return self.continue_embeddings(
            embeds.repeat_interleave(group_size, dim=0),  # decoding reads only the uncached tail
            mask.repeat_interleave(group_size, dim=0),
            cache=self._prefill(embeds, mask, group_size, lm),
            lm=lm,
            sampling_logps=sampling_logps,
            **generate_kwargs,
        )

    @torch.no_grad()
    def continue_embeddings(
        self,
        embeds: torch.Tensor,
        mask: torch.Tensor,
        stop_ids: list[int] | None = None,
        cache: Cache | None = None,
        lm: nn.Module | None = None,
        sampling_logps: list[torch.Tensor] | None = None,
        **generate_kwargs,
    ) -> torch.Tensor:
        """Decode after input embeddings [N, P, H] (`cache`: keys and values of their first columns), in eval mode.

        Returns only the new tokens [N, C], padded after each row's stop (`stop_ids`, default the policy's);
        placeholder tokens (audio) are never sampled. NaN/inf scores stop it with a `DivergenceError` naming the
        likely setting (`models.divergence.FiniteScores`). The settings rollouts and evaluation use run in our own
        loop (`models.decode`); any other transformers setting (no_repeat_ngram_size, stop_strings, ...) runs in
        transformers `generate`, which gives the same tokens for the settings both have. `sampling_logps`, when
        given, receives [N] log-probs per step of the drawn tokens under the processed scores (our loop only: it
        stays empty when `generate` runs).
        """
        model = lm if lm is not None else self.hf_model
        stop_ids = stop_ids or self.stop_token_ids()
        generate_kwargs = with_finite_scores(generate_kwargs)
        config = lean_settings(model, generate_kwargs) if self.decodes_lean else None
        was_training = model.training
        model.eval()
        try:
            if config is None:
                return self._transformers_generate(model, embeds, mask, stop_ids, cache, generate_kwargs)
            pad_counts = (mask != 0).int().argmax(dim=1)  # [N] leading columns of left padding, as generate counts
            processors = logits_processors(
                config, stop_ids, self.special_token_ids(), pad_counts, generate_kwargs["logits_processor"]
            )
            pad_id = self.tokenizer.pad_token_id
            pad_id = stop_ids[0] if pad_id is None else pad_id  # generate's default too
            return decode(model, embeds, mask, cache, config, processors, stop_ids, pad_id, sampling_logps)
        finally:
            model.train(was_training)

    def _transformers_generate(self, model, embeds, mask, stop_ids, cache, generate_kwargs) -> torch.Tensor:
        """transformers `generate`: the path for settings the lean loop does not implement."""
        return model.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            suppress_tokens=self.special_token_ids() or None,
            eos_token_id=stop_ids,
            pad_token_id=self.tokenizer.pad_token_id,
            **({CACHE_KWARG: cache} if cache is not None else {}),
            **generate_kwargs,
        )

    def _prefill(
        self, embeds: torch.Tensor, mask: torch.Tensor, group_size: int, lm: nn.Module | None = None
    ) -> DynamicCache | None:
        """KV cache of every prompt token but the last, computed once per prompt and repeated G times."""
        if embeds.shape[1] < 2:
            return None
        positions = real_token_positions(mask)[:, :-1]
        _, cache = self._cached_prompt_pass(embeds[:, :-1], mask[:, :-1], positions, lm)
        cache.batch_repeat_interleave(group_size)
        return cache

    def _cached_prompt_pass(
        self, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, lm: nn.Module | None = None
    ) -> tuple[torch.Tensor, DynamicCache]:
        """Run prompts [B, P] once through the decoder (`lm`'s if given): hidden states and a KV cache to continue
        from."""
        model = lm if lm is not None else self.hf_model
        cache = DynamicCache(config=model.config.get_text_config())
        decoder = lm.get_decoder() if lm is not None else self.decoder()
        out = decoder(
            inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True, **{CACHE_KWARG: cache}
        )
        return out.last_hidden_state, cache

    def completion_logps(
        self,
        encoding: PromptEncoding,
        completion_ids: torch.Tensor,  # [N, C] with N = B * group_size
        completion_mask: torch.Tensor,  # [N, C]
        temperature: float = 1.0,
        reencode_audio: bool = False,
    ) -> torch.Tensor:
        """log π(c_t | prompt, c_<t) for every completion token: [N, C]."""
        group_size = completion_ids.shape[0] // encoding.input_ids.shape[0]
        prompt_embeds = self.embed_prompts(encoding, reencode_audio)  # [B, P, H]
        mask = torch.cat([encoding.attention_mask.repeat_interleave(group_size, dim=0), completion_mask], dim=1)
        positions = real_token_positions(mask)  # [N, P+C]
        if group_size > 1 and self.shares_prompt_passes():
            hidden = self._hidden_shared_prompt(prompt_embeds, completion_ids, mask, positions, group_size)
        else:
            hidden = self._hidden_full(prompt_embeds, completion_ids, mask, positions, group_size)
        logits = self.hf_model.get_output_embeddings()(hidden).float()  # [N, C, V]
        if temperature != 1.0:  # one pass over N x C x vocabulary values less (and in the backward) when it is 1
            logits = logits / temperature
        logps = torch.log_softmax(logits, dim=-1)
        return logps.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)

    def _hidden_full(self, prompt_embeds, completion_ids, mask, positions, group_size: int) -> torch.Tensor:
        """Hidden states that predict each completion token, running prompt + completion for every sample."""
        completion_embeds = self.hf_model.get_input_embeddings()(completion_ids)
        embeds = torch.cat([prompt_embeds.repeat_interleave(group_size, dim=0), completion_embeds], dim=1)
        prompt_mask = mask[:, : prompt_embeds.shape[1]]
        hidden = self.decoder()(
            inputs_embeds=embeds, attention_mask=needed_mask(mask, prompt_mask), position_ids=positions
        ).last_hidden_state
        # Hidden state at position p predicts token p+1: keep only those that predict completion tokens.
        return hidden[:, prompt_embeds.shape[1] - 1 : -1]  # [N, C, H]

    def shares_prompt_passes(self) -> bool:
        """Whether the log-prob passes run each prompt once for its G samples (else every sample in full)."""
        layer_types = getattr(self.hf_model.config.get_text_config(), "layer_types", None) or []
        if any(kind != "full_attention" for kind in layer_types):
            return False  # a sliding window would need a windowed view of the shared prompt
        return not activation_checkpointing(self.hf_model) or can_share_prompt_under_checkpointing(self.hf_model)

    def _hidden_shared_prompt(self, prompt_embeds, completion_ids, mask, positions, group_size: int) -> torch.Tensor:
        """The same hidden states, but the prompt runs once per example and its keys/values serve the G samples.

        The prompt is most of each sequence, so this cuts the log-prob passes' work by about that share. Gradients
        flow through the per-layer repeat into the one prompt pass. Both passes' caches give the same states when a
        checkpointed layer replays, so this also holds with activation checkpointing on.
        """
        prompt_len, layers = prompt_embeds.shape[1], self.hf_model.config.get_text_config().num_hidden_layers
        prompt_cache = Cache(layers=[PromptKVLayer() for _ in range(layers)])
        prompt_mask = mask[::group_size, :prompt_len]
        with replayable_cache(self.hf_model):
            prompt_out = self.decoder()(
                inputs_embeds=prompt_embeds,
                attention_mask=needed_mask(prompt_mask, prompt_mask),
                position_ids=positions[::group_size, :prompt_len],
                **{CACHE_KWARG: prompt_cache},
            ).last_hidden_state
            first = prompt_out[:, -1:].repeat_interleave(group_size, dim=0)  # predicts completion token 0
            if completion_ids.shape[1] == 1:
                return first
            shared = Cache(layers=[SharedPromptLayer(layer, group_size) for layer in prompt_cache.layers])
            rest = self.decoder()(
                inputs_embeds=self.hf_model.get_input_embeddings()(completion_ids[:, :-1]),
                attention_mask=needed_mask(mask[:, :-1], prompt_mask),
                position_ids=positions[:, prompt_len:-1],
                **{CACHE_KWARG: shared},
            ).last_hidden_state
        return torch.cat([first, rest], dim=1)  # [N, C, H]

    def decoder(self) -> nn.Module:
        """The transformer stack without the LM head."""
        return self.hf_model.get_decoder()


def render_prompts(
    policy: Policy, examples: list[AudioQAExample], template: PromptTemplate, with_audio: bool | None = None
) -> list[str]:
    """Chat-formatted prompt strings, ending with the assistant turn opener; `with_audio=False` asks an audio
    policy in text alone (the question and options, no clip)."""
    with_audio = policy.has_audio if with_audio is None else with_audio
    chat = policy.processor if with_audio else policy.tokenizer
    return [
        chat.apply_chat_template(
            template.messages(ex, with_audio=with_audio), add_generation_prompt=True, tokenize=False
        )
        for ex in examples
    ]
