"""Pretrain the embedded Qwen2-Audio's encoder to hear, as Whisper's pretraining gives a real audio LM's encoder.

Captioning alone (`listening`) asks the language model to find a clip's content in audio embeddings where it is a
few percent of their norm: on one CPU that took 500 steps, on another 1,200 steps never got there, and the
language model's trajectory was the same whatever the encoder did (it was not reading the audio). So the encoder
first learns what the demo's questions ask, in every frame of what the language model reads:

    logit = SCALE * cos(audio_t, w_task)      for every audio embedding audio_t (after the projector)

a cosine classifier per task (is the *second* tone the higher / the louder?) trained with binary cross-entropy on
the encoder and projector. The cosine matters: a plain linear probe is satisfied by a faint direction that a large
weight amplifies, which is exactly what the language model could not read; here the answer must be a large part
of each normalised embedding, which is what the language model's input RMSNorm passes on. The classifier is
discarded; captioning then teaches the language model to say what the encoder hears (~200 steps).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn.functional import binary_cross_entropy_with_logits, normalize
from tqdm.auto import tqdm

from audio_thinker.embedded.listening import LISTENING_TASKS, WindowEncoder, listening_pool
from audio_thinker.example import AudioQAExample
from audio_thinker.models.audio_policy import Qwen2AudioPolicy

SCALE = 10.0  # cos = 0.3 already gives a logit of 3: the loss only vanishes when the answer dominates each frame


def second_is_greater(example: AudioQAExample) -> float:
    """The label: 1.0 when the clip's second tone is the higher (or louder) one."""
    return float(example.answer == "the second tone")


def frame_logits(audio: torch.Tensor, directions: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
    """SCALE * cos(audio_t, direction of the frame's task): audio [A, H], directions [K, H], tasks [A] -> [A]."""
    return SCALE * (normalize(audio, dim=-1) * normalize(directions, dim=-1)[tasks]).sum(-1)


CLIP_ONLY = "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>"  # a prompt that is only the clip


def hearing_batch(encode: WindowEncoder, examples: list[AudioQAExample]):
    """Every audio embedding of every clip [A, H], with its clip's task [A] and label [A]."""
    encoding = encode([CLIP_ONLY] * len(examples), examples)
    audio, lengths = encoding.audio_embeds, encoding.audio_lengths
    tasks = torch.tensor([LISTENING_TASKS.index(ex.task) for ex in examples]).repeat_interleave(lengths)
    labels = torch.tensor([second_is_greater(ex) for ex in examples]).repeat_interleave(lengths)
    return audio, tasks, labels


def teach_hearing(
    policy: Qwen2AudioPolicy, steps: int = 300, batch_size: int = 16, lr: float = 1e-3, seed: int = 0
) -> list[float]:
    """Train the encoder and projector with the per-frame cosine classifier; returns the loss curve."""
    rng = np.random.default_rng(seed + 2)
    examples = listening_pool(seed=seed)
    directions = torch.nn.Parameter(torch.randn(len(LISTENING_TASKS), policy.hf_model.config.text_config.hidden_size))
    audio_params = [p for module in policy.audio_modules() for p in module.parameters()]
    encode = WindowEncoder(policy)
    optimizer = torch.optim.AdamW([*audio_params, directions], lr=lr)
    losses = []
    for _ in tqdm(range(steps), desc="warm start (hearing)", leave=False, disable=None):
        audio, tasks, labels = hearing_batch(
            encode, [examples[i] for i in rng.integers(len(examples), size=batch_size)]
        )
        loss = binary_cross_entropy_with_logits(frame_logits(audio, directions, tasks), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
