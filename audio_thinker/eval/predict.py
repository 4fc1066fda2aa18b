"""Examples in, graded predictions out: one free pass and one budget-forced pass per reasoning budget.

Each batch's prompts (and audio) are encoded once and reused by every pass. Predictions are plain records,
written one per line to `predictions.jsonl` and aggregated by `audio_thinker.eval.metrics`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from audio_thinker.data.example import AudioQAExample
from audio_thinker.eval.budget import Decoding, budget_forced_generate
from audio_thinker.models.policy import Policy, PromptEncoding
from audio_thinker.rewards.parsing import is_correct, parse_completion
from audio_thinker.rollout.sampler import completion_mask, render_prompts, token_count

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """One graded completion; `budget` is the reasoning budget in tokens, None for the free (unforced) pass."""

    id: str
    task: str
    difficulty: str
    budget: int | None
    sample: int  # 0..num_samples-1
    completion: str
    answer: str | None  # the parsed answer text
    gold: str
    correct: bool
    mode: str  # think | no_think | malformed (see rewards/parsing.py)
    think_tokens: int
    answer_tokens: int


@dataclass(frozen=True)
class Generated:
    """A completion and its token counts, whichever way it was produced."""

    text: str
    think_tokens: int
    answer_tokens: int


@torch.no_grad()
def free_generate(policy: Policy, encoding: PromptEncoding, max_new_tokens: int, decoding: Decoding) -> list[Generated]:
    """Completions as the model writes them, up to `max_new_tokens` (no forcing): [B * num_samples]."""
    ids = policy.generate(encoding, decoding.num_samples, max_new_tokens=max_new_tokens, **decoding.generate_kwargs())
    mask = completion_mask(ids, policy.stop_token_ids())
    pad = policy.tokenizer.pad_token_id
    texts = policy.tokenizer.batch_decode(ids * mask + pad * (1 - mask), skip_special_tokens=True)
    out = []
    for text in texts:
        parsed = parse_completion(text)
        out.append(
            Generated(text, token_count(policy.tokenizer, parsed.think), token_count(policy.tokenizer, parsed.answer))
        )
    return out


def forced_generate(
    policy: Policy, encoding: PromptEncoding, budget: int, answer_tokens: int, decoding: Decoding
) -> list[Generated]:
    """Budget-forced completions (see `audio_thinker.eval.budget`): [B * num_samples]."""
    done = budget_forced_generate(policy, encoding, budget, answer_tokens, decoding)
    return [Generated(c.text, c.think_tokens, c.answer_tokens) for c in done]


def grade(example: AudioQAExample, generated: Generated, budget: int | None, sample: int) -> Prediction:
    """Parse and grade one completion against its example."""
    parsed = parse_completion(generated.text)
    return Prediction(
        id=example.id, task=example.task, difficulty=example.difficulty, budget=budget, sample=sample,
        completion=generated.text, answer=parsed.answer, gold=example.answer,
        correct=is_correct(parsed.answer, example),
        mode=parsed.mode, think_tokens=generated.think_tokens, answer_tokens=generated.answer_tokens,
    )  # fmt: skip


def predict(
    policy: Policy,
    examples: Sequence[AudioQAExample],
    template,
    budgets: Sequence[int] = (),
    decoding: Decoding | None = None,
    answer_tokens: int = 16,
    max_new_tokens: int | None = 256,
    batch_size: int = 16,
    progress: bool = False,
) -> list[Prediction]:
    """Grade every example in a free pass (unless `max_new_tokens` is None) and at every budget.

    Returned in pass order (free first, then budgets as given), examples in order within a pass.
    """
    if policy.has_audio and any(ex.audio is None for ex in examples):
        missing = [ex.id for ex in examples if ex.audio is None][:5]
        raise ValueError(f"examples {missing} have no audio but the policy is an audio model")
    passes: list[int | None] = ([None] if max_new_tokens is not None else []) + [int(b) for b in budgets]
    results: dict[int | None, list[Prediction]] = {budget: [] for budget in passes}
    decoding = decoding or Decoding()
    n = decoding.num_samples
    for start in range(0, len(examples), batch_size):
        batch = list(examples[start : start + batch_size])
        audios = [ex.audio for ex in batch] if policy.has_audio else None
        encoding = policy.encode_prompts(render_prompts(policy, batch, template), audios)
        for budget in passes:
            if budget is None:
                generated = free_generate(policy, encoding, max_new_tokens, decoding)
            else:
                generated = forced_generate(policy, encoding, budget, answer_tokens, decoding)
            results[budget] += [grade(batch[i // n], gen, budget, i % n) for i, gen in enumerate(generated)]
        if progress:
            log.info("evaluated %d/%d examples", start + len(batch), len(examples))
    return [prediction for budget in passes for prediction in results[budget]]
