"""Teach a freshly initialised tiny policy the output format, so GRPO has a reward signal from step one.

A random policy almost never writes `<think>…</think><answer>X</answer>`: every group then gets the same
reward, every advantage is zero and nothing trains. A few hundred supervised steps on synthetic completions
fix that. The answers in those completions are *random options*, so the warm model is at chance accuracy:
learning to answer correctly is left to RL.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from audio_thinker.data.example import AudioQAExample
from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.format.prompts import ADAPTIVE, THINK
from audio_thinker.models.policy import Policy, render_prompts

OPENERS = (
    "First, I listen to the audio.",
    "Let me compare the sounds.",
    "I count the events one by one.",
    "Based on the audio, I compare the options.",
    "I listen carefully to the pitch and loudness.",
)


def format_completion(example: AudioQAExample, rng: np.random.Generator, think: bool) -> str:
    """A well-formed completion choosing a random option (and reasoning that names it when `think`)."""
    choices = example.choices or [example.answer]
    pick = int(rng.integers(len(choices)))
    letter = chr(ord("A") + pick)
    if not think:
        # Sometimes an empty think block: the shape budget forcing uses for a zero reasoning budget.
        return f"<think></think><answer>{letter}</answer>" if rng.random() < 0.3 else f"<answer>{letter}</answer>"
    reason = f"{OPENERS[int(rng.integers(len(OPENERS)))]} It seems to be {choices[pick]}, so the answer is {letter}."
    return f"<think>{reason}</think><answer>{letter}</answer>"


def warm_start(policy: Policy, steps: int = 150, batch_size: int = 8, lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Supervised steps on format-only targets; returns the loss curve (mean token NLL per step)."""
    rng = np.random.default_rng(seed)
    data = SyntheticAudioQA(size=steps * batch_size, seed=seed + 7919)
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    eos = policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    losses = []
    for step in tqdm(range(steps), desc="warm start (format)", leave=False, disable=None):  # off when not a tty
        examples = [data[step * batch_size + i] for i in range(batch_size)]
        think = rng.random(batch_size) < 0.8  # mostly reasoning; some direct answers for the adaptive prompt
        prompts = [
            render_prompts(policy, [ex], THINK if t else ADAPTIVE)[0] for ex, t in zip(examples, think, strict=False)
        ]
        targets = [format_completion(ex, rng, bool(t)) for ex, t in zip(examples, think, strict=False)]
        audios = [ex.audio for ex in examples] if policy.has_audio else None
        encoding = policy.encode_prompts(prompts, audios)
        ids, mask = _right_padded([policy.tokenizer(t, add_special_tokens=False)["input_ids"] + [eos] for t in targets])
        logps = policy.completion_logps(encoding, ids, mask)  # one "sample" per prompt
        loss = -(logps * mask).sum() / mask.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def _right_padded(sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists as [N, C] ids (0-padded on the right) and their mask."""
    width = max(len(s) for s in sequences)
    ids = torch.zeros(len(sequences), width, dtype=torch.long)
    mask = torch.zeros(len(sequences), width, dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return ids, mask
