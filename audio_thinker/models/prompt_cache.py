"""Prompt KV caches for the shared-prompt log-prob passes that stay exact under activation checkpointing.

The log-prob passes run each prompt once and let its G samples attend to its keys and values. A checkpointed
decoder layer replays its forward in the backward pass; transformers drops a cache under checkpointing because
a cache that appends would then be written twice. These caches give the same states on a replay: the prompt pass
stores (not appends) its states, and the completion pass only reads them, so transformers may keep them.
"""

from __future__ import annotations

import contextlib
import inspect

import torch
from torch import nn
from transformers import Qwen2Model
from transformers.cache_utils import DynamicLayer
from transformers.modeling_layers import GradientCheckpointingLayer

# transformers 5.24 renamed the KV-cache argument `past_key_values` to `cache` (the old name warns until it goes);
# pass whichever this version takes, so neither old nor new releases warn.
CACHE_KWARG = "cache" if "cache" in inspect.signature(Qwen2Model.forward).parameters else "past_key_values"


class PromptKVLayer(DynamicLayer):
    """One layer's prompt keys and values, written by the prompt pass.

    It keeps what it is given instead of appending, so a checkpointed layer that replays its forward in the backward
    pass writes the same states again instead of doubling the prompt.
    """

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        self.keys, self.values = key_states, value_states
        return key_states, value_states


class SharedPromptLayer(DynamicLayer):
    """The completion pass's read-only view of one prompt layer, each prompt's states repeated for its G samples.

    Nothing is stored, so a checkpointed replay reads exactly the states the first pass read; gradients reach the
    one prompt pass through the repeat.
    """

    def __init__(self, prompt: PromptKVLayer, group_size: int) -> None:
        super().__init__()
        self.prompt, self.group_size = prompt, group_size
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        keys = torch.cat([self.prompt.keys.repeat_interleave(self.group_size, dim=0), key_states], dim=-2)
        values = torch.cat([self.prompt.values.repeat_interleave(self.group_size, dim=0), value_states], dim=-2)
        return keys, values  # [N, heads, P + C', head_dim]

    def get_seq_length(self) -> int:
        return self.prompt.get_seq_length()


# transformers >= 5.2x lets a checkpointed layer keep a cache it may replay safely (`_can_checkpoint_with_cache`);
# before that it always drops the cache under checkpointing, and the log-prob passes run in full instead.
REPLAYABLE_CACHE = hasattr(GradientCheckpointingLayer, "_can_checkpoint_with_cache")


def checkpointed_layers(model: nn.Module) -> list[nn.Module]:
    """Decoder layers with activation checkpointing on."""
    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer) and m.gradient_checkpointing]


def can_share_prompt_under_checkpointing(model: nn.Module) -> bool:
    """Whether the shared-prompt passes give exact gradients with this model's checkpointing.

    Non-reentrant checkpointing records the graph in the first pass, so prompt states kept in our cache carry their
    gradient; the reentrant kind runs that pass without a graph, and its cached states would carry none.
    """
    layers = checkpointed_layers(model)
    reentrant = [getattr(m._gradient_checkpointing_func, "keywords", {}).get("use_reentrant", True) for m in layers]
    return REPLAYABLE_CACHE and not any(reentrant)


@contextlib.contextmanager
def replayable_cache(model: nn.Module):
    """Let checkpointed layers keep our prompt caches, which give the same states when a layer is replayed."""
    layers = checkpointed_layers(model)
    for layer in layers:
        layer._can_checkpoint_with_cache = True  # an instance attribute: the class stays as transformers ships it
    try:
        yield
    finally:
        for layer in layers:
            del layer._can_checkpoint_with_cache
