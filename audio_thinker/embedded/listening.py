"""Give the embedded Qwen2-Audio what a pretrained audio LM brings to RL: it reasons in text and it hears.

A real audio LM starts RL with an encoder that hears (Qwen2-Audio's is Whisper-large-v3, pretrained further on
captions) and a language model that can reason about a described sound. A randomly initialised tiny model has
neither, and GRPO on top of it stayed at chance (README "What it learns"). The build teaches both, and leaves
the one thing the demo's RL should learn: to answer from what it hears.

1. `teach_reasoning`, text only (no audio, cheap): the think prompt of a comparison question, completed with a
   description of a clip and the answer that description implies:
   `<think>I hear a low tone, then a high tone.</think><answer>the second tone</answer>`.
2. `hearing.teach_hearing`: the encoder learns to hear what the questions ask, in every frame it passes on.
3. `teach_listening`, with audio: every prompt the templates make, completed with the clip's *true* description
   (`meta["caption"]`) and then an option picked *at random*; a few text-only examples of step 1 ride along in
   every batch so the reasoning is kept. Its last `hesitant_steps` add an overthinking habit: up to three
   hesitations before the description (`warm_start.hesitation`), something for CESAR's overthinking term to remove.

The warm model describes held-out clips correctly and answers from a described sound correctly, yet answers audio
questions at chance: with audio in the prompt it learned that its answer is unrelated to what it said. GRPO only
has to undo that (under 10 steps in the default run), and with the audio replaced by silence the descriptions say
nothing and the answers stay at chance.

The tasks are those a 64-wide encoder learns to hear in a few hundred steps (which of two tones is higher, which
louder); durations, counts and rhythm did not come out of captioning on this budget. Whether the result hears is
measured, not assumed (`checks`): the build trains on until it does.

Listening trains through a short-window view of the encoder: an encoder of the same transformers class with the
same modules (so the same weights, trained in place) but a window of `window_seconds` instead of 30 s. On a clip
shorter than the window it computes what the full encoder computes on the clip's frames (padded frames are masked
in both), several times cheaper (the synthetic clips last 1.9 s).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import Qwen2AudioProcessor

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.embedded.format_warm_start import THINK_SHARE, completion_nll, format_completion
from audio_thinker.example import AudioQAExample
from audio_thinker.format.prompts import ADAPTIVE, THINK
from audio_thinker.format.tags import completion_text
from audio_thinker.models.audio_policy import Qwen2AudioPolicy
from audio_thinker.models.policy import PromptEncoding, render_prompts

LISTENING_TASKS = ("pitch_compare", "loudness_compare")
DIFFICULTIES = ("easy", "medium")


@dataclass(frozen=True)
class ListeningSchedule:
    """How long each phase trains. `embedded.build` checks the model after every round of hearing + listening,
    and trains another round (`more_*` steps) while it fails, `max_rounds` in all."""

    reasoning_steps: int = 600
    hearing_steps: int = 300  # `hearing.teach_hearing`: the encoder learned every held-out clip by 150-200
    listening_steps: int = 300  # every cell described by 200 (two seeds, on the CPU where 1,200 failed before)
    hesitant_steps: int = 100  # closing every round: the overthinking habit
    more_hearing_steps: int = 150
    more_listening_steps: int = 200
    max_rounds: int = 4


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


class WindowEncoder:
    """Prompts with clips encoded through the short-window view of the policy's encoder, with gradient."""

    def __init__(self, policy: Qwen2AudioPolicy, window_seconds: int = 2) -> None:
        self.policy = policy
        self.processor = window_processor(policy, window_seconds)
        self.tower = window_view(policy.hf_model.model.audio_tower, window_seconds)

    def __call__(self, texts: list[str], examples: list[AudioQAExample]) -> PromptEncoding:
        rate = self.processor.feature_extractor.sampling_rate
        batch = self.processor(
            text=texts, audio=[e.audio for e in examples], sampling_rate=rate, return_tensors="pt", padding=True
        )
        encoding = PromptEncoding(
            batch["input_ids"],
            batch["attention_mask"],
            input_features=batch["input_features"],
            feature_attention_mask=batch["feature_attention_mask"],
        )
        encoding.audio_embeds = self.policy.encode_audio(encoding, self.tower)  # with gradient: the encoder learns
        encoding.audio_lengths = (encoding.input_ids == self.policy.audio_token_id).sum(dim=1)
        return encoding


def listening_pool(size: int = 512, seed: int = 0) -> list[AudioQAExample]:
    """The examples both phases draw from (never the seeds of training or validation data)."""
    data = SyntheticAudioQA(size, seed=seed + 104_729, tasks=LISTENING_TASKS, difficulties=DIFFICULTIES)
    return [data[i] for i in range(size)]


def reasoning_completion(example: AudioQAExample) -> str:
    """The clip's description, then the answer it implies."""
    return completion_text(example.answer, think=f"I hear {example.meta['caption']}.")


def reasoning_loss(policy: Qwen2AudioPolicy, examples: list[AudioQAExample]) -> torch.Tensor:
    """Mean token NLL of `reasoning_completion` after the text-only think prompt (options listed as words)."""
    prompts = render_prompts(policy, examples, replace(THINK, letter_options=False), with_audio=False)
    return completion_nll(policy, policy.encode_prompts(prompts), [reasoning_completion(ex) for ex in examples])


def teach_reasoning(
    policy: Qwen2AudioPolicy, steps: int = 600, batch_size: int = 16, lr: float = 3e-3, seed: int = 0
) -> list[float]:
    """Step 1 (module docstring): text-only steps; returns the loss curve."""
    rng = np.random.default_rng(seed + 1)
    examples = listening_pool(seed=seed)
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in tqdm(range(steps), desc="warm start (reasoning)", leave=False, disable=None):
        loss = reasoning_loss(policy, [examples[i] for i in rng.integers(len(examples), size=batch_size)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def teach_listening(
    policy: Qwen2AudioPolicy,
    steps: int = 500,
    hesitant_steps: int = 100,
    batch_size: int = 16,
    reasoning_per_step: int = 4,
    lr: float = 1e-3,
    seed: int = 0,
    window_seconds: int = 2,
) -> list[float]:
    """Step 3 (module docstring), every weight trained; returns the loss curve (mean token NLL per step)."""
    rng = np.random.default_rng(seed)
    examples = listening_pool(seed=seed)
    pool_size = len(examples)
    encode = WindowEncoder(policy, window_seconds)
    variants = {
        (think, letters): replace(template, letter_options=letters)
        for think, template in ((True, THINK), (False, ADAPTIVE))
        for letters in (True, False)
    }
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=lr)
    losses = []
    for step in tqdm(range(steps + hesitant_steps), desc="warm start (listening)", leave=False, disable=None):
        # The habit comes after the hearing (hesitations from the start slowed listening), and only in answers to
        # audio: text examples that hesitated too taught the warm model to answer audio from its description.
        hesitate = step >= steps
        picked = [examples[i] for i in rng.integers(pool_size, size=batch_size)]
        prompts, targets = [], []
        for example in picked:
            think, letters = bool(rng.random() < THINK_SHARE), bool(rng.random() < 0.5)
            prompts += render_prompts(policy, [example], variants[think, letters])
            targets.append(format_completion(example, rng, think, letters, describe=True, hesitate=hesitate))
        loss = completion_nll(policy, encode(prompts, picked), targets)
        if reasoning_per_step:  # keeps phase 1's skill while the model learns to answer audio at random
            loss = loss + reasoning_loss(
                policy, [examples[i] for i in rng.integers(pool_size, size=reasoning_per_step)]
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
