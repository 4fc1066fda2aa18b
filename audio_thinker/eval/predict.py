"""Examples in, graded predictions out: one free pass and one budget-forced pass per reasoning budget.

Examples are batched across the dataset (`batch_size` prompts per generate call); each batch's prompts (and
audio) are encoded once and reused by every pass. Examples may be a lazy iterable, so audio is loaded one batch
at a time. Every prediction is graded by every scorer of `format.scorers` (`scores`); `correct` is the
headline one. Predictions are plain records, written one per line to `predictions.jsonl` and aggregated by
`audio_thinker.eval.metrics`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

import torch
from tqdm import tqdm

from audio_thinker.eval.budget import budget_grid_generate
from audio_thinker.example import AudioQAExample
from audio_thinker.format.parsing import parse_completion
from audio_thinker.format.scorers import SCORERS, get_scorer
from audio_thinker.models.decoding import Decoding
from audio_thinker.models.policy import Policy, PromptEncoding, render_prompts
from audio_thinker.rollout.sampler import read_completions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """One graded completion; `budget` is the reasoning budget in tokens, None for the free (unforced) pass."""

    id: str
    task: str
    difficulty: str
    category: str
    sub_category: str
    budget: int | None
    sample: int  # 0..num_samples-1
    completion: str
    answer: str | None  # the parsed answer text
    gold: str
    correct: bool  # under the headline scorer
    scores: dict[str, bool]  # under every scorer, by name
    mode: str  # think | no_think | malformed (see format/parsing.py)
    think_tokens: int
    answer_tokens: int
    options: int = 0  # how many choices the question offered (0: open question); gives the chance level


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
    read = read_completions(policy, ids)
    return [
        Generated(p.text, think, answer)
        for p, think, answer in zip(read.parsed, read.think_lengths, read.answer_lengths, strict=True)
    ]


def forced_generate(
    policy: Policy, encoding: PromptEncoding, budgets: Sequence[int], answer_tokens: int, decoding: Decoding
) -> dict[int, list[Generated]]:
    """Budget-forced completions at every budget (see `audio_thinker.eval.budget`): {budget: [B * num_samples]}."""
    done = budget_grid_generate(policy, encoding, list(budgets), answer_tokens, decoding)
    return {b: [Generated(c.text, c.think_tokens, c.answer_tokens) for c in done[b]] for b in done}


def grade(
    example: AudioQAExample,
    generated: Generated,
    budget: int | None,
    sample: int,
    scorer: str = "choice",
    letters: bool = True,
) -> Prediction:
    """Parse one completion and grade it by every scorer; `correct` is `scorer`'s verdict."""
    parsed = parse_completion(generated.text)
    scores = {name: fn(parsed.answer, example.answer, example.choices, letters) for name, fn in SCORERS.items()}
    meta = example.meta
    return Prediction(
        id=example.id,
        task=example.task,
        difficulty=example.difficulty,
        category=str(meta.get("category", "unknown")),
        sub_category=str(meta.get("sub-category", "unknown")),
        budget=budget,
        sample=sample,
        completion=generated.text,
        answer=parsed.answer,
        gold=example.answer,
        correct=scores[scorer],
        scores=scores,
        mode=parsed.mode,
        think_tokens=generated.think_tokens,
        answer_tokens=generated.answer_tokens,
        options=len(example.choices or ()),
    )


def batches(examples: Iterable[AudioQAExample], size: int) -> Iterator[list[AudioQAExample]]:
    """Consecutive lists of `size` examples (the last may be shorter), read lazily."""
    it = iter(examples)
    while batch := list(islice(it, size)):
        yield batch


def predict(
    policy: Policy,
    examples: Iterable[AudioQAExample],
    template,
    budgets: Sequence[int] = (),
    decoding: Decoding | None = None,
    answer_tokens: int = 16,
    max_new_tokens: int | None = 256,
    batch_size: int = 16,
    progress: bool = False,
    scorer: str = "choice",
    total: int | None = None,
) -> list[Prediction]:
    """Grade every example in a free pass (unless `max_new_tokens` is None) and at every budget.

    Returned in pass order (free first, then budgets as given), examples in order within a pass. `scorer` names
    the headline scorer (`correct`); a bare letter counts when `template` letters the options. `progress` shows a
    bar on a terminal (a log line per batch otherwise); `total` is the number of examples when `examples` is lazy.
    """
    get_scorer(scorer)  # an unknown name fails before any generation
    letters = bool(getattr(template, "letter_options", True))
    passes: list[int | None] = ([None] if max_new_tokens is not None else []) + [int(b) for b in budgets]
    results: dict[int | None, list[Prediction]] = {budget: [] for budget in passes}
    decoding = decoding or Decoding()
    n, done = decoding.num_samples, 0
    total = total if total is not None else (len(examples) if isinstance(examples, Sequence) else None)
    bar = tqdm(total=total, desc="eval", unit="example", file=sys.stderr, disable=None if progress else True)
    for batch in batches(examples, batch_size):
        if policy.has_audio and any(ex.audio is None for ex in batch):
            missing = [ex.id for ex in batch if ex.audio is None][:5]
            raise ValueError(f"examples {missing} have no audio but the policy is an audio model")
        audios = [ex.audio for ex in batch] if policy.has_audio else None
        encoding = policy.encode_prompts(render_prompts(policy, batch, template), audios)
        generated: dict[int | None, list[Generated]] = {}
        if max_new_tokens is not None:
            generated[None] = free_generate(policy, encoding, max_new_tokens, decoding)
        if budgets:  # every budget at once: the grid shares its reasoning pass (eval.budget.budget_grid_generate)
            generated |= forced_generate(policy, encoding, budgets, answer_tokens, decoding)
        for budget in passes:
            results[budget] += [
                grade(batch[i // n], gen, budget, i % n, scorer, letters) for i, gen in enumerate(generated[budget])
            ]
        done += len(batch)
        bar.update(len(batch))
        if progress and bar.disable:  # no terminal (a log file, a batch job): a line per batch instead
            log.info("evaluated %d/%s examples", done, total if total is not None else "?")
    bar.close()
    return [prediction for budget in passes for prediction in results[budget]]
