"""The policy's current weights as plain transformers weights, for a rollout server or a generation copy to load.

A LoRA policy's weights come merged (W + ΔW of every active adapter, `modules_to_save` copies under their original
names) without touching the training model: each delta is added to a copy, so training continues bit for bit. A
QLoRA policy's NF4 base weights come dequantised (never re-quantised). `merged_weights` yields them one tensor at a
time, so a consumer that streams them (weight sync, a layer-by-layer copy) never holds a second whole model;
`trained_weights` yields only those an optimizer step changes, for refreshing such a copy in place.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from audio_thinker.models.policy import Policy

# peft's names around a wrapped module: `q_proj.base_layer.weight`, `lm_head.modules_to_save.default.weight`.
_ADAPTER_PARTS = re.compile(r"\.(base_layer|modules_to_save\.[^.]+)\.")
_BASE_LAYER = ".base_layer"


def _active_lora_layers(model: nn.Module) -> dict[str, nn.Module]:
    """peft LoRA layers whose adapters are on and not yet merged into their base layer, by module name."""
    layers = {}
    for name, module in model.named_modules():
        if getattr(module, "disable_adapters", True) or not hasattr(module, "get_delta_weight"):
            continue  # not a LoRA layer, or its adapters are switched off
        if not getattr(module, "merged", False):  # a merged layer's delta is already inside base_layer.weight
            layers[name] = module
    return layers


def _delta(layer: nn.Module) -> torch.Tensor | None:
    """The sum of the active adapters' ΔW of one LoRA layer (None when none of them adapts it)."""
    total = None
    for adapter in layer.active_adapters:
        if adapter in getattr(layer, "lora_A", {}) or adapter in getattr(layer, "lora_embedding_A", {}):
            delta = layer.get_delta_weight(adapter)
            total = delta if total is None else total + delta
    return total


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    """A bitsandbytes 4-bit weight dequantised to its original dtype; any other tensor as it is."""
    state = getattr(tensor, "quant_state", None)
    if state is None:
        return tensor.detach()
    import bitsandbytes.functional as bnb_functional  # only 4-bit models get here, and they imported it at load

    return bnb_functional.dequantize_4bit(tensor.data, state)


def _own_tensors(module: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """A module's own parameters and persistent buffers (not its children's)."""
    yield from module.named_parameters(recurse=False)
    for name, buffer in module.named_buffers(recurse=False):
        if name not in module._non_persistent_buffers_set:
            yield name, buffer


def _weight_sources(model: nn.Module) -> Iterator[tuple[str, torch.Tensor, nn.Module | None]]:
    """(base name, stored tensor, its active LoRA layer or None) for every weight of the transformers model; nothing
    is computed, so a consumer that wants only some weights pays only for those."""
    lora = _active_lora_layers(model)
    for module_name, module in model.named_modules():
        for name, tensor in _own_tensors(module):
            key = f"{module_name}.{name}" if module_name else name
            if ".lora_" in key or ".original_module." in key:
                continue  # adapter factors, and the untrained twin of a modules_to_save copy
            adapted = name == "weight" and module_name.endswith(_BASE_LAYER)
            layer = lora.get(module_name.removesuffix(_BASE_LAYER)) if adapted else None
            yield _ADAPTER_PARTS.sub(".", key), tensor, layer


def _merged(tensor: torch.Tensor, layer: nn.Module | None, dtype: torch.dtype | None) -> torch.Tensor:
    """`tensor` dequantised, plus `layer`'s ΔW when given, cast to `dtype` when given."""
    value = _plain(tensor)
    delta = None if layer is None else _delta(layer)
    value = value if delta is None else value + delta.to(value.dtype)
    return value if dtype is None else value.to(dtype)


@torch.no_grad()
def merged_weights(model: nn.Module, dtype: torch.dtype | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) for every weight of the transformers model under its base names, one at a time: active LoRA
    deltas folded in, NF4 dequantised, cast to `dtype` when given. Only the tensor being yielded is a new copy."""
    for key, tensor, layer in _weight_sources(model):
        yield key, _merged(tensor, layer, dtype)


@torch.no_grad()
def trained_weights(model: nn.Module, dtype: torch.dtype | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """The subset of `merged_weights` an optimizer step can change: LoRA-adapted weights (frozen base + current ΔW)
    and trainable ones (`modules_to_save` copies, trained biases). The frozen rest is neither dequantised nor copied,
    so a copy refreshed from these pays only for what trains."""
    for key, tensor, layer in _weight_sources(model):
        if layer is not None or tensor.requires_grad:
            yield key, _merged(tensor, layer, dtype)


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every merged weight at once (see `merged_weights`); for `save_pretrained`, which wants a dict."""
    return dict(merged_weights(model))


@torch.no_grad()
def save_merged(policy: Policy, path: str | Path, with_processor: bool = True) -> Path:
    """Write the policy's weights (adapters merged) and config, plus its processor when asked, into `path`."""
    path = Path(path)
    model = policy.hf_model
    model.save_pretrained(path, state_dict=merged_state_dict(model))
    if with_processor:
        policy.processor.save_pretrained(path)
    return path


def model_summary(config: dict) -> dict:
    """The architecture facts two checkpoints of the same model share (config.json as a dict)."""
    text = config.get("text_config") or config
    audio = config.get("audio_config") or {}
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads")
    return {
        "model_type": config.get("model_type"),
        **{k: text.get(k) for k in keys},
        "audio_d_model": audio.get("d_model"),
    }
