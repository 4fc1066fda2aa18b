"""`rollout.generation_kwargs`: more sampling settings (repetition_penalty, min_p, ...), checked per engine at start.

The `hf` engine passes them to transformers `generate` under their own names; the `vllm` engine sends each under its
vLLM `SamplingParams` name and refuses the ones vLLM has no equivalent for. Keys the rollout sets itself
(temperature, max_new_tokens, stop and pad tokens, G samples per prompt) are refused with the key to use instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

KEY = "rollout.generation_kwargs"
# Set by their own `rollout.*` keys.
OWN_KEYS = {
    "do_sample": "rollouts are always sampled",
    "temperature": "set rollout.temperature",
    "top_p": "set rollout.top_p",
    "top_k": "set rollout.top_k",
    "max_new_tokens": "set rollout.max_new_tokens",
    "max_tokens": "set rollout.max_new_tokens",
    "max_length": "set rollout.max_new_tokens",
    "min_new_tokens": "set rollout.min_new_tokens",
    "min_tokens": "set rollout.min_new_tokens",
    "min_length": "set rollout.min_new_tokens",
    "num_return_sequences": "set rollout.group_size",
    "n": "set rollout.group_size",
}
# transformers `generate` settings that shape sampling and leave G samples per prompt and their tokens intact.
HF_SETTINGS = (
    "repetition_penalty",
    "min_p",
    "no_repeat_ngram_size",
    "typical_p",
    "epsilon_cutoff",
    "eta_cutoff",
    "top_h",
    "bad_words_ids",
    "sequence_bias",
    "begin_suppress_tokens",
    "exponential_decay_length_penalty",
    "renormalize_logits",
    "remove_invalid_values",
    "max_time",
)
# transformers name -> vLLM SamplingParams name, for the settings vLLM has; plus vLLM's own penalties.
VLLM_NAMES = {"repetition_penalty": "repetition_penalty", "min_p": "min_p"}
VLLM_ONLY = ("presence_penalty", "frequency_penalty")


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _own(key: str) -> None:
    if key in OWN_KEYS:
        raise ValueError(f"{KEY}.{key}: not here: {OWN_KEYS[key]}")


def hf_generation_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The settings as transformers `generate` keyword arguments, or an error naming the key and what to do."""
    from transformers import GenerationConfig

    available = [name for name in HF_SETTINGS if hasattr(GenerationConfig(), name)]
    for key in kwargs:
        _own(key)
        if key in VLLM_ONLY:
            raise ValueError(
                f"{KEY}.{key}: transformers generate (rollout.engine=hf) has no such setting; it is vLLM's "
                f"(rollout.engine=vllm). The hf engine takes: {', '.join(available)}"
            )
        if key not in available:
            what = "is fixed by the rollout" if hasattr(GenerationConfig(), key) else "is not a generate setting"
            raise ValueError(
                f"{KEY}.{key}: {what}; {_suggest(key, available)}the hf engine passes these to transformers "
                f"generate: {', '.join(available)}"
            )
    return dict(kwargs)


def vllm_sampling_params(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The settings under vLLM's `SamplingParams` names, or an error for one vLLM has no equivalent for."""
    known = [*VLLM_NAMES, *VLLM_ONLY]
    out = {}
    for key, value in kwargs.items():
        _own(key)
        if key in VLLM_NAMES:
            out[VLLM_NAMES[key]] = value
        elif key in VLLM_ONLY:
            out[key] = value
        elif key in HF_SETTINGS:
            raise ValueError(
                f"{KEY}.{key}: vLLM's SamplingParams has no equivalent, so rollout.engine=vllm cannot honour it; "
                f"use rollout.engine=hf or remove it. The vllm engine takes: {', '.join(known)}"
            )
        else:
            raise ValueError(
                f"{KEY}.{key}: not a sampling setting the vllm engine knows; {_suggest(key, known + list(HF_SETTINGS))}"
                f"it takes: {', '.join(known)}"
            )
    return out
