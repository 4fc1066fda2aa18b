"""A lean decoding loop: one forward of the newest token per step, its logits processed and sampled, nothing else.

transformers `generate` spends most of a small model's decoding step in its own machinery (input preparation, mask
building, stopping criteria, bookkeeping). Rollouts use few of its settings, so this loop keeps only those:
temperature, top-k, top-p, min-p, repetition penalty, min_new_tokens, stop tokens and suppressed tokens, plus the
caller's logits processors (the divergence check). It applies transformers' own processor classes in the order
`generate` applies them and draws with the same `torch.multinomial` call, so for a fixed seed it returns the same
tokens. Any other setting (no_repeat_ngram_size, typical_p, bad_words_ids, stop_strings, ...), passed or set in the
model's generation config, leaves `lean_settings` returning None: the caller then runs `generate` itself.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from transformers import (
    DynamicCache,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers.cache_utils import Cache
from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled
from transformers.integrations.fsdp import is_fsdp_managed_module

from audio_thinker.models.prompt_cache import CACHE_KWARG

# `generate` keyword arguments the loop honours; any other sends the call to `generate`.
LEAN_KWARGS = frozenset(
    {
        "do_sample",
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "repetition_penalty",
        "max_new_tokens",
        "min_new_tokens",
        "logits_processor",
    }
)


def real_token_positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count real tokens only, so left padding does not shift them (as `generate` does)."""
    return (mask.cumsum(dim=1) - 1).clamp(min=0)


def _unimplemented(config: GenerationConfig) -> list[str]:
    """Settings of a merged generation config that `generate` would act on and the loop does not implement."""
    on = {
        "guidance_scale": config.guidance_scale not in (None, 1.0),
        "sequence_bias": config.sequence_bias is not None,
        "encoder_repetition_penalty": config.encoder_repetition_penalty not in (None, 1.0),
        "no_repeat_ngram_size": bool(config.no_repeat_ngram_size),
        "encoder_no_repeat_ngram_size": bool(config.encoder_no_repeat_ngram_size),
        "bad_words_ids": config.bad_words_ids is not None,
        "min_length": bool(config.min_length),
        "forced_bos_token_id": config.forced_bos_token_id is not None,
        "forced_eos_token_id": config.forced_eos_token_id is not None,
        "remove_invalid_values": bool(config.remove_invalid_values),
        "exponential_decay_length_penalty": config.exponential_decay_length_penalty is not None,
        "begin_suppress_tokens": config.begin_suppress_tokens is not None,
        "top_h": config.top_h is not None,
        "typical_p": config.typical_p is not None and config.typical_p < 1.0,
        "epsilon_cutoff": bool(config.epsilon_cutoff),
        "eta_cutoff": bool(config.eta_cutoff),
        "watermarking_config": config.watermarking_config is not None,
        "renormalize_logits": bool(config.renormalize_logits),
        "max_time": config.max_time is not None,
        "stop_strings": config.stop_strings is not None,
        "suppress_tokens": config.suppress_tokens is not None,  # a checkpoint's own (ours are passed apart)
        "num_beams": config.num_beams not in (None, 1),
        "num_return_sequences": config.num_return_sequences not in (None, 1),
        "max_new_tokens": config.max_new_tokens is None,  # generate's max_length rules then: leave them to it
        "return_dict_in_generate": bool(config.return_dict_in_generate),
    }
    return [name for name, active in on.items() if active]


def lean_settings(model: nn.Module, generate_kwargs: dict[str, Any]) -> GenerationConfig | None:
    """`generate_kwargs` over `model`'s generation config, as `generate` merges them; None if the loop can't run them.

    The merge is transformers' own (`_prepare_generation_config`), so a checkpoint's defaults (a Qwen
    generation_config.json may set repetition_penalty) apply here exactly as they do in `generate`.
    """
    if not LEAN_KWARGS.issuperset(generate_kwargs):
        return None
    settings = {key: value for key, value in generate_kwargs.items() if key != "logits_processor"}
    config, _ = model._prepare_generation_config(None, **settings)
    return None if _unimplemented(config) else config


def logits_processors(
    config: GenerationConfig,
    stop_ids: list[int],
    suppress_ids: list[int],
    pad_counts: torch.Tensor,  # [N] left-padding columns of each row's prompt
    custom: LogitsProcessorList | None = None,
) -> LogitsProcessorList:
    """transformers' processors for `config`, merged with `custom` and ordered exactly as `generate` builds them."""
    device = pad_counts.device
    out = LogitsProcessorList()
    if config.repetition_penalty is not None and config.repetition_penalty != 1.0:
        # As generate does: it skips that many of a padded row's first *new* tokens, since with a prompt of embeddings
        # its token history holds only new tokens. Kept so that both paths give the same tokens.
        out.append(RepetitionPenaltyLogitsProcessor(config.repetition_penalty, prompt_ignore_length=pad_counts))
    if config.min_new_tokens or suppress_ids:  # generate's MinNewTokensLength + SuppressTokens processors, in one
        out.append(ForbiddenTokens(suppress_ids, stop_ids, config.min_new_tokens or 0, device))
    out = _merge(out, custom or [])  # the caller's processors run after transformers' own, before the warpers
    if config.do_sample:
        if config.temperature is not None and config.temperature != 1.0:
            out.append(TemperatureLogitsWarper(config.temperature))
        if config.top_k:
            out.append(TopKLogitsWarper(top_k=config.top_k, min_tokens_to_keep=1))
        if config.top_p is not None and config.top_p < 1.0:
            out.append(TopPLogitsWarper(top_p=config.top_p, min_tokens_to_keep=1))
        if config.min_p is not None:
            out.append(MinPLogitsWarper(min_p=config.min_p, min_tokens_to_keep=1))
    return out


class ForbiddenTokens(LogitsProcessor):
    """Scores of -inf for `suppress_ids` always and for `stop_ids` before `min_new_tokens` tokens: the values of
    transformers' `SuppressTokensLogitsProcessor` and `MinNewTokensLengthLogitsProcessor` (whose order between them
    cannot matter), in one in-place fill instead of their four whole-vocabulary operations per token each."""

    def __init__(self, suppress_ids: list[int], stop_ids: list[int], min_new_tokens: int, device) -> None:
        self.always = torch.tensor(sorted(set(suppress_ids)), dtype=torch.long, device=device)
        self.early = torch.tensor(sorted(set(suppress_ids) | set(stop_ids)), dtype=torch.long, device=device)
        self.min_new_tokens = min_new_tokens

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        forbidden = self.early if input_ids.shape[1] < self.min_new_tokens else self.always
        return scores.index_fill_(1, forbidden, -math.inf) if forbidden.numel() else scores


def _merge(defaults: LogitsProcessorList, custom: list) -> LogitsProcessorList:
    """`generate`'s rule: a custom processor replaces a default of its type in place; the others follow the defaults."""
    merged = LogitsProcessorList(next((c for c in custom if type(c) is type(d)), d) for d in defaults)
    merged.extend(c for c in custom if c not in merged)
    return merged


@torch.no_grad()
def decode(
    lm: nn.Module,
    embeds: torch.Tensor,  # [N, P, H] the prompts' input embeddings
    mask: torch.Tensor,  # [N, P] left padded
    cache: Cache | None,  # keys and values of the first columns of `embeds`, or None
    config: GenerationConfig,
    processors: LogitsProcessorList,
    stop_ids: list[int],
    pad_id: int,
    sampling_logps: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """New tokens [N, C] after each prompt, padded after each row's stop; it ends when every row has stopped.

    `sampling_logps`, when given, receives each step's log-probs [N] of the drawn tokens under the processed scores
    (after temperature, top-k, top-p: the distribution they were drawn from, as vLLM's processed log-probs).

    `lm` is a causal LM (or a multimodal one whose decoder and head take text embeddings). Each step runs its decoder
    on the newest token only and its head on the last position only; the attention mask is passed only when some
    prompt is padded (an all-ones mask is dropped, as transformers would), positions count real tokens only.
    """
    rows, device = embeds.shape[0], embeds.device
    decoder, head, embed = lm.get_decoder(), lm.get_output_embeddings(), lm.get_input_embeddings()
    cached = cache.get_seq_length() if cache is not None else 0
    cache = cache if cache is not None else DynamicCache(config=lm.config.get_text_config())
    padded = not bool(mask.all())
    full_mask = torch.cat([mask, mask.new_ones(rows, config.max_new_tokens)], dim=1) if padded else None
    positions = real_token_positions(mask)[:, cached:]  # [N, P - cached]
    inputs = embeds[:, cached:]
    tokens = torch.full((rows, config.max_new_tokens), pad_id, dtype=torch.long, device=device)
    unfinished = torch.ones(rows, dtype=torch.bool, device=device)
    stops, synced, written = torch.tensor(stop_ids, device=device), ranks_in_step(lm), None
    for step in range(config.max_new_tokens):
        step_mask = full_mask[:, : mask.shape[1] + step] if padded else None
        hidden = decoder(
            inputs_embeds=inputs,
            attention_mask=step_mask,
            position_ids=positions,
            use_cache=True,
            **{CACHE_KWARG: cache},
        ).last_hidden_state
        logits = head(hidden[:, -1:]) if written is None or synced else None  # sharded: the head gathers too
        if written is None:  # else this rank is done and only keeps its peers company
            scores = logits[:, -1].float()  # [N, V]
            for processor in processors:  # not LogitsProcessorList.__call__: it inspects every signature every step
                scores = processor(tokens[:, :step], scores)
            tokens[:, step] = torch.where(unfinished, next_tokens(scores, config.do_sample), pad_id)
            if sampling_logps is not None:  # 0 after a row's stop: its pad may be a token the processors removed
                drawn = scores.log_softmax(dim=-1).gather(1, tokens[:, step : step + 1]).squeeze(1)
                sampling_logps.append(torch.where(unfinished, drawn, 0.0))
            unfinished &= ~torch.isin(tokens[:, step], stops)
            written = None if bool(unfinished.any()) else step + 1
        if all_ranks_done(written is not None, synced, device):
            break
        inputs, positions = embed(tokens[:, step : step + 1]), positions[:, -1:] + 1
    return tokens if written is None else tokens[:, :written]


def next_tokens(scores: torch.Tensor, sample: bool) -> torch.Tensor:
    """One token per row [N] from processed scores [N, V]: drawn as `generate` draws, or the best."""
    if sample:
        return torch.multinomial(scores.softmax(dim=-1), num_samples=1).squeeze(1)
    return scores.argmax(dim=-1)


def ranks_in_step(lm: nn.Module) -> bool:
    """Whether every rank must run every forward (ZeRO-3 or FSDP gather weights in it), as `generate` decides."""
    sharded = is_deepspeed_zero3_enabled() or is_fsdp_managed_module(lm)
    return sharded and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_ranks_done(done: bool, synced: bool, device: torch.device) -> bool:
    """Whether decoding can end: this rank is done, and with `synced`, every other rank too."""
    if not synced:
        return done
    left = torch.tensor(0.0 if done else 1.0, device=device)
    dist.all_reduce(left)
    return float(left) == 0.0
