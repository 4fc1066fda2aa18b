"""Divergence named when it happens: non-finite next-token scores stop generation, non-finite weights are never
checkpointed.

A learning rate far too high (`optimizer.lr=1e3`) drives the weights to inf/NaN within a step or two; a temperature
too small for floating point (`rollout.temperature=1e-45`) turns finite scores into inf when divided by it. Either
way torch's sampler fails with "probability tensor contains either inf, nan or element < 0" (on a GPU, a device-side
assert), which names no setting. `FiniteScores` stops generation at the first such token with a `DivergenceError`
that says which of the two it is; `audio_thinker.checkpoints.finite_weights.check_weights_finite` keeps a checkpoint
of diverged weights from being written, so the last checkpoint on disk holds the weights from before.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from audio_thinker.checkpoints.finite_weights import LR_HINT, DivergenceError

RESUME_HINT = (
    "no checkpoint of diverged weights is written: resume from the last one (ckpt_path=last) once the setting is "
    "changed"
)


class FiniteScores(LogitsProcessor):
    """Raise a `DivergenceError` when a row's best next-token score is not finite, before or after `temperature`.

    transformers applies the temperature after every processor passed to `generate`, so the division it will do is
    checked here. One max over the vocabulary per token is the cheapest check that catches both causes: NaN
    propagates through the max, a score of +inf is the max, and a finite max over a tiny temperature overflows
    exactly as the sampler's own division would (-inf scores, i.e. masked tokens, are fine). Checking the
    parameters after each optimizer step would cost a pass over every weight and still miss the temperature;
    catching torch's error after the fact does not work on a GPU, where it is a device-side assert.
    """

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        top = scores.amax(dim=-1)  # [N]
        if bool(torch.isfinite(top / self.temperature).all()):
            return scores
        token = input_ids.shape[1] + 1  # generate passes the tokens sampled so far (the prompt is embeddings)
        if not bool(torch.isfinite(top).all()):
            raise DivergenceError(
                f"generation diverged: the model's next-token scores are NaN or infinite (completion token {token}); "
                f"{LR_HINT}. {RESUME_HINT}."
            )
        raise DivergenceError(
            f"generation diverged: a sampling temperature of {self.temperature!r} (rollout.temperature; "
            f"eval.temperature when evaluating) is too small for floating point: scores up to "
            f"{float(top.abs().max()):.3g} divided by it overflow to inf (completion token {token}); use at least "
            "1e-3 for near-greedy sampling (a resume with ckpt_path=last continues from the last checkpoint)."
        )


def with_finite_scores(generate_kwargs: dict[str, Any]) -> dict[str, Any]:
    """`generate_kwargs` with a `FiniteScores` check added to its logits processors (temperature: when sampling)."""
    sampled = generate_kwargs.get("do_sample", False)
    temperature = generate_kwargs.get("temperature") if sampled else None
    processors = LogitsProcessorList(generate_kwargs.get("logits_processor") or [])
    processors.append(FiniteScores(temperature if temperature is not None else 1.0))
    return {**generate_kwargs, "logits_processor": processors}
