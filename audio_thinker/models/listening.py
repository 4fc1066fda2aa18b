"""Teach the embedded Qwen2-Audio to hear and to say what it hears, while its answers stay random.

A real audio LM starts RL with an encoder that hears (Qwen2-Audio's is Whisper-large-v3, pretrained further on
captions and speech). A randomly initialised tiny encoder does not: its outputs barely change from clip to clip,
and GRPO on top of it stayed at chance. So the build trains every weight, encoder included, on the prompts the
templates make with completions whose reasoning first describes the clip (`meta["caption"]` of the synthetic
tasks: "I hear a low tone, then a high tone.") and then picks an option *at random*. The warm model hears and
says so, but answers at chance: answering from what it heard is what RL has to learn.

The tasks are those a 64-wide encoder learns to hear in a few hundred steps (which of two tones is higher, which
louder); durations, counts and rhythm did not come out of captioning on this budget.

Training runs through a short-window view of the encoder: an encoder of the same transformers class with the same
modules (so the same weights, trained in place) but a window of `window_seconds` instead of 30 s. On a clip shorter
than the window it computes what the full encoder computes on the clip's frames (padded frames are masked in both),
at a tenth of the cost.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import Qwen2AudioProcessor

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.format.prompts import ADAPTIVE, THINK
from audio_thinker.models.policy import PromptEncoding, Qwen2AudioPolicy, render_prompts
from audio_thinker.models.warm_start import THINK_SHARE, format_completion, right_padded

LISTENING_TASKS = ("pitch_compare", "loudness_compare")
DIFFICULTIES = ("easy", "medium")


def window_view(tower: nn.Module, window_seconds: int) -> nn.Module:
    """An encoder of `tower`'s class sharing its modules, for input features of `window_seconds` (100 frames/s)."""
    config = copy.deepcopy(tower.config)
    config.max_source_positions = window_seconds * 50  # mel frames / 2 (the second convolution's stride)
    view = type(tower)(config)
    for name in ("conv1", "conv2", "layers", "layer_norm"):
        setattr(view, name, getattr(tower, name))
    view.embed_positions.weight.data = tower.embed_positions.weight.data[: config.max_source_positions].clone()
    return view


def window_processor(policy: Qwen2AudioPolicy, window_seconds: int) -> Qwen2AudioProcessor:
    """The policy's processor with its feature extractor cut to `window_seconds`."""
    extractor = policy.processor.feature_extractor
    features = type(extractor)(
        feature_size=extractor.feature_size,
        sampling_rate=extractor.sampling_rate,
        chunk_length=window_seconds,
        return_attention_mask=True,
    )
    return Qwen2AudioProcessor(features, policy.tokenizer, chat_template=policy.tokenizer.chat_template)


def teach_listening(
    policy: Qwen2AudioPolicy,
    steps: int = 400,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    pool_size: int = 512,
    window_seconds: int = 4,
) -> list[float]:
    """Supervised steps on every weight (module docstring); returns the loss curve (mean token NLL per step)."""
    rng = np.random.default_rng(seed)
    data = SyntheticAudioQA(pool_size, seed=seed + 104_729, tasks=LISTENING_TASKS, difficulties=DIFFICULTIES)
    examples = [data[i] for i in range(pool_size)]
    processor, rate = window_processor(policy, window_seconds), policy.processor.feature_extractor.sampling_rate
    variants = {
        (think, letters): replace(template, letter_options=letters)
        for think, template in ((True, THINK), (False, ADAPTIVE))
        for letters in (True, False)
    }
    tower = window_view(policy.hf_model.model.audio_tower, window_seconds)
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=lr)
    eos = policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    losses = []
    for _ in tqdm(range(steps), desc="warm start (listening)", leave=False, disable=None):
        picked = [examples[i] for i in rng.integers(pool_size, size=batch_size)]
        prompts, targets = [], []
        for example in picked:
            think, letters = bool(rng.random() < THINK_SHARE), bool(rng.random() < 0.5)
            prompts += render_prompts(policy, [example], variants[think, letters])
            completion = format_completion(example, rng, think, letters, describe=True)
            targets.append(policy.tokenizer(completion, add_special_tokens=False)["input_ids"] + [eos])
        batch = processor(
            text=prompts, audio=[e.audio for e in picked], sampling_rate=rate, return_tensors="pt", padding=True
        )
        encoding = PromptEncoding(
            batch["input_ids"],
            batch["attention_mask"],
            input_features=batch["input_features"],
            feature_attention_mask=batch["feature_attention_mask"],
        )
        encoding.audio_embeds = policy.encode_audio(encoding, tower)  # with gradient: the encoder learns
        ids, mask = right_padded(targets)
        logps = policy.completion_logps(encoding, ids, mask)
        loss = -(logps * mask).sum() / mask.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
