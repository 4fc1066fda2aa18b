"""Sampling a rollout: prompts from a template, audio encoded once, G samples per prompt from an engine."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from audio_thinker.example import AudioQAExample
from audio_thinker.format.parsing import ParsedCompletion, parse_completion
from audio_thinker.models.policy import Policy, render_prompts
from audio_thinker.rollout.batch import Rollout
from audio_thinker.rollout.engine import GenerationRequest, HFEngine, RolloutEngine, SamplingSettings


def completion_mask(ids: torch.Tensor, stop_ids: list[int]) -> torch.Tensor:
    """1 on every token up to and including the first stop token, 0 after it (generate pads there)."""
    is_stop = torch.isin(ids, torch.tensor(stop_ids, device=ids.device))
    after_stop = (is_stop.cumsum(dim=1) - is_stop.long()) > 0  # strictly after the first stop token
    return (~after_stop).long()


def token_count(tokenizer, text: str | None) -> int:
    """Tokens of `text` under the policy's tokenizer (0 for None)."""
    return token_counts(tokenizer, [text])[0]


def token_counts(tokenizer, texts: list[str | None]) -> list[int]:
    """Tokens of each text under the policy's tokenizer (0 for None or empty), in one batched call."""
    present = [i for i, text in enumerate(texts) if text]
    counts = [0] * len(texts)
    if present:
        ids = tokenizer([texts[i] for i in present], add_special_tokens=False, return_attention_mask=False)["input_ids"]
        for i, row in zip(present, ids, strict=True):
            counts[i] = len(row)
    return counts


@dataclass(frozen=True)
class ReadCompletions:
    """Generated token ids read back: which tokens count, and each completion parsed with its token counts."""

    mask: torch.Tensor  # [N, C] 1 up to and including the stop token
    parsed: list[ParsedCompletion]
    think_lengths: list[int]
    answer_lengths: list[int]


def read_completions(policy: Policy, ids: torch.Tensor) -> ReadCompletions:
    """Mask after the stop token, decode, parse and count the think/answer tokens of [N, C] generated ids."""
    mask = completion_mask(ids, policy.stop_token_ids())
    pad = policy.tokenizer.pad_token_id
    texts = policy.tokenizer.batch_decode(ids * mask + pad * (1 - mask), skip_special_tokens=True)
    parsed = [parse_completion(text) for text in texts]
    counts = token_counts(policy.tokenizer, [p.think for p in parsed] + [p.answer for p in parsed])
    return ReadCompletions(mask, parsed, counts[: len(parsed)], counts[len(parsed) :])


def sample_rollout(
    policy: Policy,
    examples: list[AudioQAExample],
    template,
    group_size: int,
    sampling: SamplingSettings,
    engine: RolloutEngine | None = None,
    num_micro_batches: int = 1,
) -> Rollout:
    """Encode the prompts (audio once per example) and sample `group_size` completions for each with `engine`."""
    audios = [ex.audio for ex in examples] if policy.has_audio else None
    if audios is not None and any(a is None for a in audios):
        missing = [ex.id for ex in examples if ex.audio is None]
        raise ValueError(f"examples {missing} have no audio but the policy is an audio model")
    prompts = render_prompts(policy, examples, template)
    encoding = policy.encode_prompts(prompts, audios)
    request = GenerationRequest(prompts, audios, encoding, group_size, sampling)
    completions = (engine or HFEngine()).generate(policy, request)
    read = read_completions(policy, completions.ids)
    return Rollout(
        examples=examples,
        group_size=group_size,
        encoding=encoding,
        completion_ids=completions.ids,
        completion_mask=read.mask,
        completions=read.parsed,
        think_lengths=read.think_lengths,
        answer_lengths=read.answer_lengths,
        temperature=sampling.temperature,
        num_micro_batches=num_micro_batches,
        sampling_logps=completions.logps,
    )
