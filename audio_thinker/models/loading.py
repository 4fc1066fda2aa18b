"""Load a policy by hub id, local path or embedded name, with optional LoRA, through one code path."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from audio_thinker.models.adapter_start import adapter_base, merge_adapter
from audio_thinker.models.families import FAMILIES, TEXT, family_of
from audio_thinker.models.four_bit import keep_4bit_weights_unpacked
from audio_thinker.models.policy import Policy
from audio_thinker.models.sources import read_model_config, resolve_path

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def on_gpu(device: str) -> bool:
    """Whether `device` (a trainer accelerator or a torch device name; `auto`: CUDA when present) is a CUDA GPU."""
    return device.startswith(("gpu", "cuda")) or (device == "auto" and torch.cuda.is_available())


def resolve_dtype(dtype: str, device: str = "auto") -> str:
    """The weight dtype to load on `device`: `auto` is bfloat16 on a CUDA GPU that supports it, else float32.

    Most CPUs have no bfloat16 matrix units: there bfloat16 is several times slower than float32 (a 5-step LoRA
    run of the embedded model: 227 s against 64 s), so an explicit `bfloat16` on the CPU is kept but warned about.
    """
    if dtype == "auto":
        bf16 = on_gpu(device) and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return "bfloat16" if bf16 else "float32"
    if dtype == "bfloat16" and not on_gpu(device):
        log.warning(
            "model.dtype=bfloat16 on the CPU: most CPUs compute bfloat16 several times slower than float32; "
            "use model.dtype=auto (float32 here, bfloat16 on a GPU that supports it) or float32"
        )
    return dtype


def build_policy(model_cfg: DictConfig, device: str = "auto", **overrides) -> Policy:
    """The policy a `model` config describes, built the one way training, evaluation and export build it.

    `model.dtype` is resolved for `device` (`resolve_dtype`: `auto` is bfloat16 on a GPU that supports it, else
    float32); `overrides` go to the loader as they are (export: the checkpoint's dtype, no quantization). Training
    passes its own composed config; eval and export pass only the `model` node `models.run_config` resolved and
    checked (our loaders and their settings, nothing else), never a run folder's raw config.
    """
    if "dtype" in model_cfg and "dtype" not in overrides:
        overrides["dtype"] = resolve_dtype(model_cfg.dtype, device)
    return instantiate(model_cfg, _convert_="all", **overrides)


def load_policy(
    path: str = "tiny-qwen2-audio",
    dtype: str = "float32",
    lora=None,
    quantization=None,
    train_audio_encoder: bool = False,
    train_projector: bool = False,
    gradient_checkpointing: bool = False,
    trust_remote_code: bool = False,
    attn_implementation: str | None = "sdpa",
    seed: int | None = 0,
) -> Policy:
    """Load model + processor and return the `Policy` for its family.

    Args:
        path: hub id, local directory, or an embedded name (`tiny-qwen2-audio`, `tiny-qwen2`).
        dtype: float32 | bfloat16 | float16 weights, or auto (`resolve_dtype`: bfloat16 on a GPU that supports it,
            else float32; training and evaluation resolve it for their own device before calling).
        lora: a `peft.LoraConfig` (Hydra-instantiated) or None for full fine-tuning; `target_modules: null`
            picks the family default (the language model's attention and MLP projections).
        quantization: a `transformers.BitsAndBytesConfig` (QLoRA: 4-bit NF4 base) or None; needs `lora`.
        train_audio_encoder / train_projector: unfreeze the audio tower / the audio-to-text projector.
        gradient_checkpointing: recompute activations in the backward pass (memory for time).
        trust_remote_code: run code shipped with the checkpoint; off unless asked.
        seed: seeds the LoRA initialisation (None: leave the global RNG alone).
    """
    if dtype != "auto" and dtype not in DTYPES:
        raise ValueError(f"model.dtype must be auto or one of {sorted(DTYPES)}, got {dtype!r}")
    dtype = resolve_dtype(dtype) if dtype == "auto" else dtype
    if lora is not None and (train_audio_encoder or train_projector):
        raise ValueError(
            "model.train_audio_encoder / model.train_projector would be frozen again by LoRA: train them through "
            "the adapter instead, e.g. model.lora.modules_to_save=[multi_modal_projector] (or [audio_tower])"
        )
    if quantization is not None and lora is None:
        raise ValueError(
            "model.quantization is set but model.lora is null: 4-bit weights cannot be trained "
            "directly; use quant=qlora_nf4 (LoRA adapters on the quantized base)"
        )
    adapter, path = _adapter_and_base(path, quantization)
    config = read_model_config(path, trust_remote_code)  # a wrong path or an uncached id, explained
    source = resolve_path(path)
    kwargs = {"dtype": DTYPES[dtype], "trust_remote_code": trust_remote_code}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    family = family_of(config.model_type)
    if family is TEXT and getattr(config, "audio_config", None) is not None:
        raise ValueError(
            f"{path}: model_type {config.model_type!r} is an audio model this version does not support yet; "
            f"supported: {sorted(FAMILIES)}, and any text-only causal LM"
        )
    if quantization is not None:
        if not quantization.llm_int8_skip_modules and family.not_quantized:
            quantization.llm_int8_skip_modules = family.skip_modules()
        kwargs["quantization_config"] = quantization
        kwargs["device_map"] = _quantized_device_map()
    processor = family.load_processor(source, trust_remote_code)
    model = family.load_model(source, **kwargs)
    if adapter is not None:  # a TRL / ms-SWIFT / peft LoRA checkpoint: its base with the adapter merged in
        model = merge_adapter(model, adapter)
    disable_dropout(model)
    keep_4bit_weights_unpacked(model)  # no inference-only CPU layout that a training forward would then run
    model.train()  # from_pretrained returns eval mode; gradient checkpointing only runs in train mode
    freeze_audio(model, train_audio_encoder, train_projector)
    if quantization is not None:  # norms in fp32, inputs that require grad: what k-bit training needs
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False  # generation re-enables the cache per call
    if lora is not None:
        if lora.target_modules is None:
            lora.target_modules = family.lora_targets
        model = apply_lora(model, lora, seed)
    return family.policy_class(model, processor)


def _adapter_and_base(path: str, quantization) -> tuple[str | None, str]:
    """(the adapter folder, its base) when `path` is a PEFT adapter folder (`models.adapter_start`), else
    (None, path)."""
    base = adapter_base(path)
    if not base:
        return None, path  # no adapter (or one without a base: check_model_source explains)
    if quantization is not None:
        raise ValueError(
            f"model.path={path}: a PEFT adapter on {base}; a 4-bit base (quant=qlora_nf4) cannot have it merged in: "
            "merge it first (audio-thinker export --merge, or peft's merge_and_unload) and set model.path to the "
            "merged folder, or use quant=lora"
        )
    return path, base


def _quantized_device_map() -> dict[str, int | str]:
    """bitsandbytes places weights at load time: this process's GPU (its LOCAL_RANK), or the CPU."""
    if torch.cuda.is_available():
        return {"": int(os.environ.get("LOCAL_RANK", 0))}
    return {"": "cpu"}


def disable_dropout(model: nn.Module) -> None:
    """RL wants the sampling and the scoring policy to be the same function: no dropout anywhere."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    for sub in (model.config, *(getattr(model.config, k, None) for k in ("text_config", "audio_config"))):
        for key in ("dropout", "attention_dropout", "activation_dropout"):
            if sub is not None and hasattr(sub, key):
                setattr(sub, key, 0.0)


def freeze_audio(model: nn.Module, train_encoder: bool, train_projector: bool) -> None:
    """Freeze the audio tower and projector unless asked; the usual setup trains the language model only."""
    inner = getattr(model, "model", None)
    parts = (("audio_tower", train_encoder), ("multi_modal_projector", train_projector), ("visual", False))
    for name, trainable in parts:
        part = getattr(inner, name, None)
        if part is not None:
            part.requires_grad_(trainable)


@contextlib.contextmanager
def quiet_peft():
    """peft still reads transformers' deprecated `is_gradient_checkpointing` (a FutureWarning on every run that is
    not ours to fix); the current name, `is_activation_checkpointing`, is what our own code reads."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def apply_lora(model: nn.Module, lora, seed: int | None) -> nn.Module:
    """Wrap `model` with peft LoRA adapters; base weights are frozen by peft."""
    from peft import get_peft_model

    if seed is not None:
        torch.manual_seed(seed)
    with quiet_peft():
        model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info("LoRA: %d trainable of %d parameters (%.2f%%)", trainable, total, 100 * trainable / max(total, 1))
    return model
