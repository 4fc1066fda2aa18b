"""Randomly initialised models of real shapes, built once into the model cache and loaded like checkpoints.

Shapes from Qwen/Qwen2-Audio-7B-Instruct's config.json: the language model (4096 wide, 32 layers of 32 heads with
32 KV heads, MLP 11008, the real 156,032-token vocabulary) and the Whisper-large audio encoder (1280 wide,
32 layers of 20 heads, FFN 5120, 128 mel bins, 30 s -> 1,500 frames -> 750 audio tokens). The tokenizer is the
embedded tiny one: ids it does not know are never needed to prompt, and sampled ones decode to nothing, which
leaves the cost of every pass unchanged.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from transformers import (
    Qwen2AudioConfig,
    Qwen2AudioForConditionalGeneration,
    Qwen2AudioProcessor,
    Qwen2Config,
    Qwen2ForCausalLM,
    WhisperFeatureExtractor,
)

from audio_thinker.embedded.architecture import CHAT_TEMPLATE, SAMPLING_RATE, build_tokenizer
from audio_thinker.models.embedded_files import embedded_model_dir

BUILD_VERSION = "v1"  # bump when a builder below changes
QWEN2_AUDIO_7B_LM = {
    "vocab_size": 156032,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 8192,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}
WHISPER_LARGE = {
    "d_model": 1280,
    "encoder_layers": 32,
    "encoder_attention_heads": 20,
    "encoder_ffn_dim": 5120,
    "num_mel_bins": 128,
    "max_source_positions": 1500,
}
TINY_LM = {  # the embedded tiny language model (embedded/architecture.py), with room for 750 audio tokens
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": False,
}
WHISPER_SECONDS = 30


def tokens_of(tokenizer) -> dict:
    """Stop and pad ids of the embedded tokenizer, for a model config."""
    return {"eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"), "pad_token_id": tokenizer.pad_token_id}


def lm_config(layers: int, tokenizer, shape: dict = QWEN2_AUDIO_7B_LM) -> dict:
    """The 7B Qwen2-Audio language model's shape with `layers` decoder layers (a language model at full width)."""
    return {**shape, "num_hidden_layers": layers, **tokens_of(tokenizer)}


def paper_lm(layers: int = 2, device: str = "cpu") -> Path:
    """A text-only Qwen2 with the 7B Qwen2-Audio language model's shape cut to `layers` layers."""

    def build(tok):
        return Qwen2ForCausalLM(Qwen2Config(**lm_config(layers, tok)))

    return _ensure(f"qwen2-audio-7b-lm-{layers}layers", build, audio_seconds=0, device=device)


def whisper_large_audio(layers: int = 32, device: str = "cpu") -> Path:
    """Qwen2-Audio with the Whisper-large encoder (`layers` of its 32 layers) and the tiny language model."""

    def build(tok):
        return _audio_model(tok, {**WHISPER_LARGE, "encoder_layers": layers}, {**TINY_LM, **tokens_of(tok)})

    return _ensure(f"whisper-large-{layers}layers-tiny-lm", build, audio_seconds=WHISPER_SECONDS, device=device)


def qwen2_audio_7b(device: str = "cpu") -> Path:
    """The whole 7B Qwen2-Audio shape (Whisper-large encoder + 32-layer language model), random weights."""

    def build(tok):
        return _audio_model(tok, WHISPER_LARGE, lm_config(32, tok))

    return _ensure("qwen2-audio-7b", build, audio_seconds=WHISPER_SECONDS, device=device)


def tiny(audio: bool) -> Path:
    """The embedded tiny models (`audio`: Qwen2-Audio with Whisper's 30 s window)."""
    return embedded_model_dir("tiny-qwen2-audio" if audio else "tiny-qwen2")


def default_cache_dir() -> Path:
    """Where the benchmark's real-shape models are built: $AUDIO_THINKER_CACHE, else ~/.cache/audio_thinker."""
    return Path(os.environ.get("AUDIO_THINKER_CACHE") or Path.home() / ".cache" / "audio_thinker")


def _audio_model(tokenizer, audio: dict, text: dict) -> Qwen2AudioForConditionalGeneration:
    config = Qwen2AudioConfig(
        audio_config=audio,
        text_config={"model_type": "qwen2", **text, "vocab_size": max(text.get("vocab_size", 0), len(tokenizer))},
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    return Qwen2AudioForConditionalGeneration(config)


def _ensure(name: str, build, audio_seconds: float, device: str) -> Path:
    """Build (on `device`, in bf16) into a staging directory, then rename it into place."""
    target = default_cache_dir() / "bench" / f"{name}-{BUILD_VERSION}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    start = time.perf_counter()
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # built in bf16: 7B of weights never exist in float32
    try:
        with torch.device(device):
            model = build(tokenizer)
    finally:
        torch.set_default_dtype(default)
    model.generation_config.eos_token_id = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if audio_seconds:
        features = WhisperFeatureExtractor(
            feature_size=128, sampling_rate=SAMPLING_RATE, chunk_length=audio_seconds, return_attention_mask=True
        )
        Qwen2AudioProcessor(features, tokenizer, chat_template=CHAT_TEMPLATE).save_pretrained(staging)
    else:
        tokenizer.save_pretrained(staging)
    built = time.perf_counter()
    model.save_pretrained(staging)
    del model
    saved = time.perf_counter()
    # The whole 7B shape writes ~17 GB: the log says where the minutes went (init on `device`, or the disk).
    logging.getLogger("bench").info(
        "built %s on %s in %.0f s, saved in %.0f s", target.name, device, built - start, saved - built
    )
    try:  # atomic: a half-written model is never visible under the final name
        staging.rename(target)
    except OSError:  # another process built it first
        shutil.rmtree(staging, ignore_errors=True)
    return target
