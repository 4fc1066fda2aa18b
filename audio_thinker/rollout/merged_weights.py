"""The policy's current weights as a plain transformers checkpoint, for a rollout server to load.

A LoRA policy is written merged (W + ΔW of every active adapter, `modules_to_save` copies under their original
names) without touching the training model: the deltas are added to a copy, so training continues bit for bit.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from audio_thinker.models.policy import Policy

# peft's names around a wrapped module: `q_proj.base_layer.weight`, `lm_head.modules_to_save.default.weight`.
_ADAPTER_PARTS = re.compile(r"\.(base_layer|modules_to_save\.[^.]+)\.")


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The transformers model's weights with every active LoRA delta folded in, under the base model's names."""
    deltas: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if getattr(module, "disable_adapters", True) or not hasattr(module, "get_delta_weight"):
            continue  # not a LoRA layer, or its adapters are switched off
        if getattr(module, "merged", False):
            continue  # already inside base_layer.weight
        for adapter in module.active_adapters:
            if adapter in getattr(module, "lora_A", {}) or adapter in getattr(module, "lora_embedding_A", {}):
                delta = module.get_delta_weight(adapter)
                key = f"{name}.base_layer.weight"
                deltas[key] = deltas[key] + delta if key in deltas else delta
    merged = {}
    for key, value in model.state_dict().items():
        if ".lora_" in key or ".original_module." in key:
            continue  # adapter factors, and the untrained twin of a modules_to_save copy
        value = value + deltas[key].to(value.dtype) if key in deltas else value
        merged[_ADAPTER_PARTS.sub(".", key)] = value.detach()
    return merged


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
