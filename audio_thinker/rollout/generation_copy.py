"""A plain copy of a LoRA/QLoRA policy's language model for sampling rollouts (`rollout.generation_weights=merged`).

Decoding through the training model runs every projection as a bitsandbytes 4-bit matmul (the weight dequantised at
each step) plus the peft adapters' two small matmuls. The copy holds W + ΔW once, dequantised and merged, in the
policy's compute dtype (bf16 on a GPU), so decoding runs at plain-model speed; training keeps NF4 + adapters. It is
built tensor by tensor into uninitialised storage (never a second full-precision model) and refreshed in place after
each optimizer step from the trained weights alone: the frozen rest of a LoRA model never changes. The sampled
tokens come from the merged, rounded weights: slightly off-policy, as a server engine's are.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from transformers import AutoModelForCausalLM
from transformers.initialization import no_init_weights

from audio_thinker.models.policy import Policy
from audio_thinker.rollout.merged_weights import merged_weights, trained_weights

KEY = "rollout.generation_weights"
NEEDS_ADAPTERS = (
    f"{KEY}=merged needs LoRA adapters (quant=lora or quant=qlora_nf4): a full fine-tune already generates from "
    f"plain weights; use {KEY}=policy"
)


def _module_name(root: nn.Module, module: nn.Module) -> str:
    """The name of `module` inside `root`."""
    return next(name for name, candidate in root.named_modules() if candidate is module)


def _prefixes(model: nn.Module) -> tuple[str, str]:
    """Where a causal LM's decoder stack and its LM head sit among its weight names (`model.language_model.`)."""
    return f"{_module_name(model, model.get_decoder())}.", f"{_module_name(model, model.get_output_embeddings())}."


def compute_dtype(policy: Policy) -> torch.dtype:
    """The dtype the policy's language model computes in: its token embeddings' (never quantised; bf16 on a GPU)."""
    return policy.hf_model.get_input_embeddings().weight.dtype


def _empty_language_model(policy: Policy, dtype: torch.dtype) -> nn.Module:
    """A transformers causal LM shaped like the policy's language model, on its device, its weights uninitialised."""
    config = copy.deepcopy(policy.hf_model.config.get_text_config())  # from_config writes its dtype into the config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the copy is plain: never re-quantised
    try:
        with no_init_weights(), torch.device(policy.device):
            lm = AutoModelForCausalLM.from_config(config, dtype=dtype)
    except ValueError as err:
        raise ValueError(
            f"{KEY}=merged: {type(policy.hf_model).__name__}'s language model ({config.model_type}) has no "
            f"transformers causal-LM class to copy it into; use {KEY}=policy"
        ) from err
    lm.generation_config = copy.deepcopy(policy.hf_model.generation_config)  # a checkpoint's sampling defaults
    return lm.eval().requires_grad_(False)


class GenerationCopy:
    """The policy's language model as one plain causal LM (`lm`), adapters merged; `refresh` after each update."""

    def __init__(self, policy: Policy, dtype: torch.dtype | None = None) -> None:
        if not policy.has_adapters:
            raise ValueError(NEEDS_ADAPTERS)
        if any(any(getattr(m, "use_dora", {}).values()) for m in policy.hf_model.modules()):
            raise ValueError(f"{KEY}=merged: DoRA adapters (lora.use_dora) do not merge as W + ΔW; use {KEY}=policy")
        self.dtype = dtype or compute_dtype(policy)
        self.lm = _empty_language_model(policy, self.dtype)
        self._source = _prefixes(policy.hf_model)  # the policy's names (decoder, head) -> the copy's
        self._target = _prefixes(self.lm)
        self.params = dict(self.lm.named_parameters(remove_duplicate=False))  # tied weights under both names
        filled = self._copy_in(merged_weights(policy.hf_model, self.dtype))
        unfilled = set(self.params) - filled
        if unfilled:
            raise ValueError(f"{KEY}=merged: the policy has no weights for {sorted(unfilled)[:5]} of its copy")

    def copy_name(self, name: str) -> str | None:
        """The copy's name for a policy weight name; None for a weight outside the language model (audio tower)."""
        for source, target in zip(self._source, self._target, strict=True):
            if name.startswith(source):
                return target + name.removeprefix(source)
        return None

    @torch.no_grad()
    def _copy_in(self, weights) -> set[str]:
        """Copy each (policy name, tensor) of the language model into the copy's own storage; the names filled."""
        filled = set()
        for name, value in weights:
            target = self.copy_name(name)
            if target in self.params:
                self.params[target].copy_(value)
                filled.add(target)
        return filled

    def refresh(self, policy: Policy) -> set[str]:
        """Bring the copy to the policy's current weights, in place: only the weights training changes (each
        LoRA-adapted one as its frozen base + current ΔW, and trainable copies such as `modules_to_save`).
        Returns the names refreshed."""
        return self._copy_in(trained_weights(policy.hf_model, self.dtype))
