"""The embedded default: a tiny random Qwen2-Audio model with an offline tokenizer, built from a config.

Nothing is downloaded. The tokenizer is a byte-level BPE trained with `tokenizers` on a corpus the package
ships; the processor is the real `Qwen2AudioProcessor` around a `WhisperFeatureExtractor`. The result is saved
once to a cache directory and then loaded with `from_pretrained`, exactly like a real checkpoint.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2AudioConfig,
    Qwen2AudioForConditionalGeneration,
    Qwen2AudioProcessor,
    Qwen2Config,
    Qwen2ForCausalLM,
    WhisperFeatureExtractor,
)

from audio_thinker.models.families import family_of
from audio_thinker.embedded.listening import teach_listening, teach_reasoning
from audio_thinker.models.processors import AudioTextProcessor
from audio_thinker.embedded.format_warm_start import warm_start

log = logging.getLogger(__name__)

# Bump when anything below changes, so stale caches are rebuilt instead of reused.
TINY_VERSION = "v8"  # shared by all embedded models; v8: the audio model reasons in text, hears, and hesitates

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"]
# Reasoning tags are ordinary (decodable) added tokens, so one token each, as in recent Qwen tokenizers.
TAG_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]

# Qwen2-Audio's chat layout: system turn, user turn with "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>" then text.
CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' %}{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Audio window of the tiny model: Whisper's 30 s at 16 kHz -> 3000 mel frames -> 750 audio tokens at most, as in the
# real Qwen2-Audio (vLLM's Qwen2-Audio assumes this window). A clip takes as many tokens as it is long (2 s: 50).
TINY_AUDIO_SECONDS = 30
# The Omni thinker keeps a 4 s window (100 audio tokens at most): vLLM cannot serve Omni on a CPU anyway, and every
# clip featurised and encoded at 30 s would make building it (and its tests) several times slower.
OMNI_AUDIO_SECONDS = 4
SAMPLING_RATE = 16_000


def default_cache_dir() -> Path:
    """Where built tiny models live: $AUDIO_THINKER_CACHE, else ~/.cache/audio_thinker."""
    root = os.environ.get("AUDIO_THINKER_CACHE") or Path.home() / ".cache" / "audio_thinker"
    return Path(root)


def build_tokenizer(vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on the shipped corpus and wrap it as a transformers tokenizer."""
    corpus = resources.files("audio_thinker").joinpath("assets/tokenizer_corpus.txt").read_text()
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus.splitlines(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    tokenizer.add_tokens(TAG_TOKENS)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    return tokenizer


def build_processor(tokenizer: PreTrainedTokenizerFast, seconds: int = TINY_AUDIO_SECONDS) -> Qwen2AudioProcessor:
    """The real Qwen2-Audio processor with a Whisper feature extractor cut to the tiny audio window."""
    features = WhisperFeatureExtractor(
        feature_size=128, sampling_rate=SAMPLING_RATE, chunk_length=seconds, return_attention_mask=True
    )
    return Qwen2AudioProcessor(feature_extractor=features, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)


# Attention heads of 32: the smallest size vLLM's CPU attention accepts (32, 64, 80, 96, ...), so the embedded
# models also serve the `vllm` rollout engine.
HEAD_DIM = 32


def _text_config(tokenizer: PreTrainedTokenizerFast) -> dict:
    """The tiny language model shared by the audio model and the text-only model."""
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 64 // HEAD_DIM,
        "num_key_value_heads": 1,
        "max_position_embeddings": 1024,
        "tie_word_embeddings": False,
        "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
        "pad_token_id": tokenizer.pad_token_id,
    }


def _set_generation_tokens(model, tokenizer: PreTrainedTokenizerFast) -> None:
    """Stop at <|im_end|> or <|endoftext|>; pad with <|endoftext|>."""
    model.generation_config.eos_token_id = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    model.generation_config.pad_token_id = tokenizer.pad_token_id


def build_text_model(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> Qwen2ForCausalLM:
    """A randomly initialised tiny text-only Qwen2 causal LM (judge default, text-only runs, benchmarks)."""
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(Qwen2Config(**_text_config(tokenizer)))
    _set_generation_tokens(model, tokenizer)
    return model


def _audio_encoder_config(seconds: int) -> dict:
    """A small Whisper-style encoder whose window is `seconds` of 16 kHz audio (100 mel frames a second)."""
    mel_frames = seconds * SAMPLING_RATE // 160
    return {
        "d_model": 64,
        "encoder_layers": 2,
        "encoder_attention_heads": 64 // HEAD_DIM,
        "encoder_ffn_dim": 128,
        "num_mel_bins": 128,
        "max_source_positions": mel_frames // 2,
    }


def build_model(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> Qwen2AudioForConditionalGeneration:
    """A randomly initialised Qwen2-Audio with a few small layers and the tokenizer's exact vocabulary."""
    config = Qwen2AudioConfig(
        audio_config=_audio_encoder_config(TINY_AUDIO_SECONDS),
        text_config={"model_type": "qwen2", **_text_config(tokenizer)},
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config)
    keep_signal(model.model.audio_tower)
    _set_generation_tokens(model, tokenizer)
    return model


def keep_signal(tower: torch.nn.Module) -> None:
    """He-initialise the encoder's two input convolutions (std sqrt(2 / fan_in)).

    transformers' default (std 0.02) scales the log-mel input down ~10x below the sinusoidal position embeddings
    added after the convolutions, so a clip barely moves the encoder's output; learning to hear then took twice
    the steps (800 instead of 400 to describe every held-out clip).
    """
    for conv in (tower.conv1, tower.conv2):
        fan_in = conv.in_channels * conv.kernel_size[0]
        torch.nn.init.normal_(conv.weight, std=(2 / fan_in) ** 0.5)
        torch.nn.init.zeros_(conv.bias)


def ensure_tiny_qwen2_audio(cache_dir: str | Path | None = None, seed: int = 0) -> Path:
    """Build the tiny Qwen2-Audio once and return its directory (processor + model)."""
    return _ensure(cache_dir, f"tiny-qwen2-audio-{TINY_VERSION}-seed{seed}", audio=True, seed=seed)


OMNI_EXTRA_TOKENS = ["<|IMAGE|>", "<|VIDEO|>", "<|vision_bos|>", "<|vision_eos|>"]


def build_omni_thinker(tokenizer: PreTrainedTokenizerFast, seed: int = 0):
    """A randomly initialised tiny Qwen2.5-Omni thinker (audio, vision and text towers all small)."""
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    tokenizer.add_tokens(OMNI_EXTRA_TOKENS, special_tokens=True)
    ids = {
        t: tokenizer.convert_tokens_to_ids(t)
        for t in ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "<|im_start|>", *OMNI_EXTRA_TOKENS]
    }
    config = Qwen2_5OmniThinkerConfig(
        audio_config={**_audio_encoder_config(OMNI_AUDIO_SECONDS), "n_window": 50, "output_dim": 64},
        # The vision tower is never used for audio questions, but the thinker always builds one.
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "fullatt_block_indexes": [0],
        },
        text_config={
            **_text_config(tokenizer),
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]},
        },
        audio_token_index=ids["<|AUDIO|>"],
        image_token_index=ids["<|IMAGE|>"],
        video_token_index=ids["<|VIDEO|>"],
        audio_start_token_id=ids["<|audio_bos|>"],
        audio_end_token_id=ids["<|audio_eos|>"],
        vision_start_token_id=ids["<|vision_bos|>"],
        vision_end_token_id=ids["<|vision_eos|>"],
        user_token_id=ids["<|im_start|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2_5OmniThinkerForConditionalGeneration(config)
    _set_generation_tokens(model, tokenizer)
    return model


def ensure_tiny_qwen2_5_omni(cache_dir: str | Path | None = None, seed: int = 0) -> Path:
    """Build the tiny Qwen2.5-Omni thinker once and return its directory (tokenizer + features + model)."""
    return _ensure(cache_dir, f"tiny-qwen2_5-omni-thinker-{TINY_VERSION}-seed{seed}", audio=True, seed=seed, omni=True)


def ensure_tiny_qwen2(cache_dir: str | Path | None = None, seed: int = 0) -> Path:
    """Build the tiny text-only Qwen2 causal LM once and return its directory (tokenizer + model)."""
    return _ensure(cache_dir, f"tiny-qwen2-text-{TINY_VERSION}-seed{seed}", audio=False, seed=seed)


def _warm_start(policy_class, model, processor, seed: int, listen: bool) -> None:
    """Short supervised warm starts, so GRPO has signal at once: the default audio model learns to reason in text
    and to hear (`listening`, which teaches the output format too); the others learn the format (`warm_start`)."""
    torch.manual_seed(seed)
    model.train()
    policy = policy_class(model, processor)
    if listen:
        teach_reasoning(policy, seed=seed)
        teach_listening(policy, seed=seed)
    else:
        warm_start(policy, seed=seed)
    model.eval()


def _ensure(cache_dir: str | Path | None, name: str, audio: bool, seed: int, omni: bool = False) -> Path:
    """Build into a staging directory and rename it into place; concurrent builders (DDP ranks) are safe."""
    target = Path(cache_dir or default_cache_dir()) / name
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("building the embedded model %s (one time, up to ~3 minutes on a CPU) into %s", name, target.parent)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    tokenizer = build_tokenizer()
    if omni:
        model = build_omni_thinker(tokenizer, seed=seed)
        processor = AudioTextProcessor(tokenizer, build_processor(tokenizer, OMNI_AUDIO_SECONDS).feature_extractor)
    elif audio:
        model, processor = build_model(tokenizer, seed=seed), build_processor(tokenizer)
    else:
        model, processor = build_text_model(tokenizer, seed=seed), tokenizer
    _warm_start(family_of(model.config.model_type).policy_class, model, processor, seed, listen=audio and not omni)
    processor.save_pretrained(staging)
    model.save_pretrained(staging)
    try:  # an atomic rename: a half-written model is never visible under the final name
        staging.rename(target)
    except OSError:  # another process won the race; its copy is complete
        shutil.rmtree(staging, ignore_errors=True)
    return target
