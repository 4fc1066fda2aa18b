"""What one benchmarked GRPO step trains, and the prompts every contender gets.

Every prompt of a run is exactly `prompt_tokens` text tokens long (filler words pad the question), and every
clip exactly fills the feature extractor's window: so every contender and every floor step sees identical shapes
([B, P] prompts, [B*G, C] completions) with no padding anywhere, and the shapes are checked after every run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
from torch.utils.data import Dataset

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.example import AudioQAExample
from audio_thinker.format.prompts import THINK, PromptTemplate
from audio_thinker.models.policy import render_prompts

ADAM_BETAS = (0.9, 0.99)  # configs/optimizer/adamw.yaml; TRL and the floors get the same
MAX_GRAD_NORM = 1.0  # configs/trainer/default.yaml gradient_clip_val
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0}  # configs/quant/lora.yaml
FILLER = " sound"  # one token per repetition in byte-level BPE vocabularies: pads prompts to one length
QUANTS = ("none", "lora", "qlora_nf4")  # configs/quant/


@dataclass(frozen=True)
class Workload:
    """One step's work, identical for every contender (model, sizes, KL, optimizer, training mode)."""

    model: str = "tiny-qwen2"  # an embedded name or a model directory (see `models`)
    batch_size: int = 2  # prompts per step
    group_size: int = 8  # G completions per prompt: 8, as both papers and our experiment presets train
    new_tokens: int = 64  # every completion is exactly this long (the stop token is masked)
    prompt_tokens: int = 0  # every prompt's text tokens; 0: the longest rendered prompt of the set
    beta: float = 0.04  # KL coefficient: a reference pass every step (k3, bias-corrected: TRL's default)
    lr: float = 1e-5
    dtype: str = "float32"
    quant: str = "none"  # none (full fine-tuning) | lora (r=16 on every projection) | qlora_nf4 (ours only)
    checkpointing: bool = False  # activation checkpointing (non-reentrant)
    audio: bool = False  # an audio model: each prompt carries one clip filling the encoder's window
    audio_seconds: float = 0.0  # the clip length (the feature extractor's window)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.quant not in QUANTS:
            raise ValueError(f"quant must be one of {', '.join(QUANTS)}; got {self.quant!r}")

    @property
    def lora(self) -> bool:
        """Whether LoRA adapters train (the reference is then the model with its adapters off)."""
        return self.quant != "none"

    @property
    def completions(self) -> int:
        """Completions per step."""
        return self.batch_size * self.group_size

    def as_dict(self) -> dict:
        return asdict(self)


class StepShape(NamedTuple):
    """The shapes one step ran on: prompts x prompt length, completions x completion length."""

    prompts: int
    prompt_len: int
    completions: int
    completion_len: int


def check_shapes(name: str, seen: list[StepShape], expected: StepShape) -> None:
    """Every measured step of `name` ran on exactly `expected` (raises naming the contender otherwise)."""
    wrong = sorted({shape for shape in seen if shape != expected})
    if not seen or wrong:
        raise AssertionError(f"{name}: steps ran on {wrong or 'nothing'}, expected {expected} in every step")


class ExampleList(Dataset):
    """A fixed list of examples as a dataset (what our datamodule draws from)."""

    def __init__(self, examples: list[AudioQAExample]) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> AudioQAExample:
        return self.examples[index]


@dataclass(frozen=True)
class PromptSet:
    """The examples of a run, their rendered prompt strings (TRL takes these), and the common text length."""

    examples: list[AudioQAExample]
    prompts: list[str]
    text_tokens: int


def text_length(tokenizer, prompt: str) -> int:
    """Text tokens of a rendered prompt (an audio placeholder counts as one)."""
    return len(tokenizer(prompt, add_special_tokens=False)["input_ids"])


def render(processor, examples: list[AudioQAExample], audio: bool, template: PromptTemplate = THINK) -> list[str]:
    """Chat-formatted prompts exactly as our rollouts render them."""
    tokenizer = getattr(processor, "tokenizer", processor)
    policy = SimpleNamespace(processor=processor, tokenizer=tokenizer, has_audio=audio)
    return render_prompts(policy, examples, template)


def fixed_length_prompts(processor, workload: Workload, count: int, template: PromptTemplate = THINK) -> PromptSet:
    """`count` synthetic examples whose prompts all have `workload.prompt_tokens` text tokens (clips: one length)."""
    tokenizer = getattr(processor, "tokenizer", processor)
    examples = [SyntheticAudioQA(size=count, seed=workload.seed)[i] for i in range(count)]
    if workload.audio:
        samples = round(workload.audio_seconds * examples[0].sampling_rate)
        examples = [_with_audio(ex, np.resize(ex.audio, samples)) for ex in examples]  # tiled to fill the window
    else:
        examples = [_with_audio(ex, None) for ex in examples]
    lengths = [text_length(tokenizer, p) for p in render(processor, examples, workload.audio, template)]
    target = workload.prompt_tokens or max(lengths)
    if target < max(lengths):
        raise ValueError(f"prompt_tokens={target} is shorter than the longest rendered prompt ({max(lengths)} tokens)")
    padded = [_pad_question(ex, target - n) for ex, n in zip(examples, lengths, strict=True)]
    prompts = render(processor, padded, workload.audio, template)
    wrong = {ex.id: n for ex, p in zip(padded, prompts, strict=True) if (n := text_length(tokenizer, p)) != target}
    if wrong:
        raise ValueError(f"padding with {FILLER!r} gave prompts of {wrong} tokens, not {target}: pick another filler")
    return PromptSet(padded, prompts, target)


def _with_audio(example: AudioQAExample, audio: np.ndarray | None) -> AudioQAExample:
    return AudioQAExample(**{**example.__dict__, "audio": None if audio is None else audio.astype(np.float32)})


def _pad_question(example: AudioQAExample, tokens: int) -> AudioQAExample:
    """The example with `tokens` filler words after its question (the answer and options are untouched)."""
    return AudioQAExample(**{**example.__dict__, "question": example.question + FILLER * tokens})
