"""Teach a freshly initialised tiny policy the output format, so GRPO has a reward signal from step one.

A random policy almost never writes `<think>…</think><answer>X</answer>`: every group then gets the same
reward, every advantage is zero and nothing trains. A few hundred supervised steps on synthetic completions
fix that. The answers in those completions are *random options*, so the warm model is at chance accuracy:
learning to answer correctly is left to RL. It sees every prompt the templates make (think and adaptive, options
lettered or listed), and answers with the option's letter when they are lettered and with its words when not.

The prompts of a small pool of examples are encoded once (the audio encoder's 30 s window is most of the cost)
and drawn again and again with fresh random targets, so there is no answer to memorise.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from tqdm.auto import tqdm

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.example import AudioQAExample
from audio_thinker.format.options import option_letter
from audio_thinker.format.prompts import ADAPTIVE, THINK
from audio_thinker.format.tags import completion_text
from audio_thinker.models.policy import Policy, PromptEncoding, render_prompts

OPENERS = (
    "First, I listen to the audio.",
    "Let me compare the sounds.",
    "I count the events one by one.",
    "Based on the audio, I compare the options.",
    "I listen carefully to the pitch and loudness.",
)


def format_completion(
    example: AudioQAExample,
    rng: np.random.Generator,
    think: bool,
    letters: bool = True,
    describe: bool = False,
    hesitate: bool = False,
) -> str:
    """A well-formed completion choosing a random option (and reasoning that names it when `think`).

    The answer is the option's letter when `letters` (the prompt lettered the options), else its words. With
    `describe`, the reasoning first says what the clip sounds like (`meta["caption"]`), then picks at random.
    """
    choices = example.choices or [example.answer]
    pick = int(rng.integers(len(choices)))
    answer = option_letter(pick) if letters else choices[pick]
    if not think:
        # Sometimes an empty think block: the shape budget forcing uses for a zero reasoning budget.
        return completion_text(answer, think="" if rng.random() < 0.3 else None)
    if describe:  # one place where the answer is chosen, after what was heard
        reason = (hesitation(rng) if hesitate else "") + f"I hear {example.meta['caption']}."
    else:
        opener = OPENERS[int(rng.integers(len(OPENERS)))]
        reason = f"{opener} It seems to be {choices[pick]}, so the answer is {answer}."
    return completion_text(answer, think=reason)


# An overthinking habit for the listening model to start with: up to three hesitations before it says what it
# heard. They carry no information and no CESAR keyword, so RL with an overthinking penalty can drop them at no cost
# in accuracy (README "What it learns"); real audio LMs pad their reasoning the same way ("Wait, ..."). No "Hmm":
# the tiny tokenizer spells it H-m-m, and greedy decoding then looped on "m".
HESITATIONS = ("Wait.", "Okay.", "Well.", "Wait, wait.")


def hesitation(rng: np.random.Generator) -> str:
    """0 to 3 hesitations, each followed by a space (none half of the time)."""
    count = int(rng.choice(4, p=[0.5, 0.2, 0.15, 0.15]))
    return "".join(HESITATIONS[int(rng.integers(len(HESITATIONS)))] + " " for _ in range(count))


THINK_SHARE = 0.8  # mostly reasoning (the think prompt); the rest direct answers to the adaptive prompt


def encode_pool(policy: Policy, examples: list[AudioQAExample]) -> dict[tuple[bool, bool], list[PromptEncoding]]:
    """Every example's prompt in each variant, encoded once, audio included: {(think, letters): encodings}."""
    pool = {}
    for think, template in ((True, THINK), (False, ADAPTIVE)):
        for letters in (True, False):
            variant = replace(template, letter_options=letters)
            audios = [[ex.audio] if policy.has_audio else None for ex in examples]
            pool[think, letters] = [
                policy.encode_prompts(render_prompts(policy, [ex], variant), audio)
                for ex, audio in zip(examples, audios, strict=True)
            ]
    return pool


def warm_start(
    policy: Policy, steps: int = 150, batch_size: int = 8, lr: float = 3e-3, seed: int = 0, pool_size: int = 24
) -> list[float]:
    """Supervised steps on format-only targets; returns the loss curve (mean token NLL per step)."""
    rng = np.random.default_rng(seed)
    data = SyntheticAudioQA(size=pool_size, seed=seed + 7919)
    examples = [data[i] for i in range(pool_size)]
    pool = encode_pool(policy, examples)
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    losses = []
    for _ in tqdm(range(steps), desc="warm start (format)", leave=False, disable=None):  # off when not a tty
        encodings, targets = [], []
        for _ in range(batch_size):
            think, letters, index = bool(rng.random() < THINK_SHARE), bool(rng.random() < 0.5), rng.integers(pool_size)
            encodings.append(pool[think, letters][index])
            targets.append(format_completion(examples[index], rng, think, letters))
        loss = completion_nll(policy, stack_encodings(encodings, policy.tokenizer.pad_token_id), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def completion_nll(policy: Policy, encoding: PromptEncoding, completions: list[str]) -> torch.Tensor:
    """Mean token NLL of `completions` (each ended by <|im_end|>) after the prompts of `encoding`, one per row."""
    eos = [policy.tokenizer.convert_tokens_to_ids("<|im_end|>")]
    ids, mask = right_padded([policy.tokenizer(c, add_special_tokens=False)["input_ids"] + eos for c in completions])
    logps = policy.completion_logps(encoding, ids, mask)
    return -(logps * mask).sum() / mask.sum()


def stack_encodings(encodings: list[PromptEncoding], pad_id: int) -> PromptEncoding:
    """One left-padded batch of single-prompt encodings (their audio rows packed in order)."""
    width = max(e.input_ids.shape[1] for e in encodings)

    def left_pad(tensor: torch.Tensor, value: int) -> torch.Tensor:
        return torch.nn.functional.pad(tensor, (width - tensor.shape[1], 0), value=value)

    audio = [e.audio_embeds for e in encodings if e.audio_embeds is not None]
    return PromptEncoding(
        torch.cat([left_pad(e.input_ids, pad_id) for e in encodings]),
        torch.cat([left_pad(e.attention_mask, 0) for e in encodings]),
        audio_embeds=torch.cat(audio) if audio else None,
        audio_lengths=torch.cat([e.audio_lengths for e in encodings]) if audio else None,
    )


def right_padded(sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists as [N, C] ids (0-padded on the right) and their mask."""
    width = max(len(s) for s in sequences)
    ids = torch.zeros(len(sequences), width, dtype=torch.long)
    mask = torch.zeros(len(sequences), width, dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return ids, mask
