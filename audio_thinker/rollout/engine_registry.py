"""The engines `rollout.engine` can name: transformers `generate` on the policy, or a vLLM server."""

from __future__ import annotations

from audio_thinker.rollout.engine import HFEngine, RolloutEngine
from audio_thinker.rollout.vllm_engine import VLLMEngine

# `rollout.engine=<name>`; a new engine adds its class here (tests may add stand-ins).
ENGINES: dict[str, type[RolloutEngine]] = {"hf": HFEngine, "vllm": VLLMEngine}


def engine_generation_kwargs(name: str, kwargs: dict | None) -> dict:
    """`rollout.generation_kwargs` as engine `name` takes them (its own names), or an error naming the bad key."""
    if name not in ENGINES:
        raise ValueError(f"rollout.engine must be one of {', '.join(sorted(ENGINES))}; got {name!r}")
    settings = {key: value for key, value in (kwargs or {}).items() if value is not None}  # null: not set
    return ENGINES[name].generation_kwargs(settings)


def check_generation_weights(name: str, generation_weights: str) -> None:
    """An error when engine `name` cannot sample from `rollout.generation_weights` (only hf has a `merged` copy)."""
    if name not in ENGINES:
        raise ValueError(f"rollout.engine must be one of {', '.join(sorted(ENGINES))}; got {name!r}")
    ENGINES[name].check_generation_weights(generation_weights)


def build_engine(name: str, server: dict | None = None, generation_weights: str = "policy") -> RolloutEngine:
    """The engine `rollout.engine` names; `server` (the `rollout.server` keys) configures a server engine,
    `generation_weights` which weights the hf engine samples from (the policy's, or a merged copy)."""
    check_generation_weights(name, generation_weights)
    return ENGINES[name].from_options(dict(server or {}), generation_weights)
