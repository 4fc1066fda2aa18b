"""What a built embedded model must do before it ships, measured on held-out examples with greedy decoding.

Training is arithmetic, and another CPU's arithmetic gives another model: the same recipe built a model that hears
on one machine and one that describes every clip the same way on another. So the build measures what it built
instead of trusting the recipe:

- `hearing`: the audio model's reasoning says what each held-out clip sounds like (`meta["caption"]`), for every
  task and level of the demo (the default run's RL can only use a sound the model hears).
- `reasoning`: told in text what a clip sounded like, it answers what that description implies.
- `format`: its completions to the think prompt are `<think>…</think><answer>…</answer>`.
- `answers at chance`: yet its answers to the audio questions are unrelated to the sound (right 30-70% of the
  time): the default run's RL has to teach it to use what it hears, and its controls (silence) show it did. A
  rebuild on other kernels once heard and reasoned and answered 0.78 before any RL.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field, replace

import torch

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.example import AudioQAExample
from audio_thinker.format.matching import choice_correct
from audio_thinker.format.parsing import parse_completion
from audio_thinker.format.prompts import THINK, PromptTemplate
from audio_thinker.format.tags import ANSWER_OPEN, THINK_CLOSE, THINK_OPEN
from audio_thinker.models.policy import Policy, render_prompts

HELD_OUT_SEED = 271_828  # never a seed of the build's pools, of training or of validation data
HEARING_BAR = 0.95  # per task and level: at most one clip in 24 described wrongly
REASONING_BAR = 0.95
FORMAT_BAR = 0.9
CHANCE_BAR = 0.6  # `chance_score`: answers right 30-70% of the time
CAPTION = re.compile(r"a \w+ tone, then a \w+ tone")
WORD_OPTIONS = replace(THINK, letter_options=False)  # the demo recipe's prompt: options as words


@dataclass(frozen=True)
class CheckReport:
    """Scores (fractions of held-out examples) against the bar each must reach."""

    scores: dict[str, float]
    bars: dict[str, float] = field(default_factory=dict)

    @property
    def failures(self) -> list[str]:
        return [name for name, score in self.scores.items() if score < self.bars[name]]

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        """One line: every score, with its bar where it falls short."""
        parts = [
            f"{name} {score:.2f}" + (f" (< {self.bars[name]:.2f})" if name in self.failures else "")
            for name, score in self.scores.items()
        ]
        return ", ".join(parts)


@torch.no_grad()
def greedy_completions(
    policy: Policy,
    examples: list[AudioQAExample],
    template: PromptTemplate,
    prefix: str = "",
    audio: bool = True,
    max_new_tokens: int = 48,
    batch_size: int = 16,
) -> list[str]:
    """Greedy completions of `template`'s prompts (each continued from `prefix`), decoded without special tokens."""
    texts = []
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        with_audio = audio and policy.has_audio
        prompts = render_prompts(policy, batch, template, with_audio=with_audio)
        audios = [ex.audio for ex in batch] if with_audio else None
        encoding = policy.encode_prompts([p + prefix for p in prompts], audios)
        ids = policy.generate(encoding, 1, do_sample=False, max_new_tokens=max_new_tokens)
        texts += [prefix + policy.tokenizer.decode(row, skip_special_tokens=True) for row in ids]
    return texts


def held_out(tasks: tuple[str, ...], difficulties: tuple[str, ...], per_cell: int) -> list[AudioQAExample]:
    """`per_cell` held-out examples of every task and difficulty."""
    data = SyntheticAudioQA(per_cell * len(tasks) * len(difficulties), HELD_OUT_SEED, tasks, difficulties)
    return [data[i] for i in range(len(data))]


def hearing_scores(examples: list[AudioQAExample], texts: list[str]) -> dict[str, float]:
    """Per task and level: the share of clips whose reasoning first describes them as their caption says."""
    right = defaultdict(list)
    for example, text in zip(examples, texts, strict=True):
        said = CAPTION.search(parse_completion(text).think or "")
        right[f"hearing {example.task}/{example.difficulty}"].append(
            bool(said) and said.group() == example.meta["caption"]
        )
    return {cell: sum(hits) / len(hits) for cell, hits in sorted(right.items())}


def chance_score(examples: list[AudioQAExample], texts: list[str]) -> float:
    """1 - 2 |accuracy - 1/2| of the answers to two-option audio questions: 1.0 when they are right half of the
    time (unrelated to the sound), 0.0 when always right or always wrong."""
    right = [
        choice_correct(parse_completion(text).answer, ex.answer, ex.choices, letters=False)
        for ex, text in zip(examples, texts, strict=True)
    ]
    return 1 - 2 * abs(sum(right) / len(right) - 0.5)


def reasoning_score(policy: Policy, examples: list[AudioQAExample]) -> float:
    """The share of text prompts, continued from a description of the clip, answered as the description implies."""
    answers = []
    for example in examples:
        prefix = f"{THINK_OPEN}I hear {example.meta['caption']}.{THINK_CLOSE}{ANSWER_OPEN}"
        [text] = greedy_completions(policy, [example], WORD_OPTIONS, prefix=prefix, audio=False, max_new_tokens=12)
        answers.append(parse_completion(text).answer == example.answer)
    return sum(answers) / len(answers)


def format_score(texts: list[str]) -> float:
    """The share of completions (to the think prompt) that reason and then answer."""
    return sum(parse_completion(t).mode == "think" for t in texts) / len(texts)


def check_listening_model(
    policy: Policy, tasks: tuple[str, ...], difficulties: tuple[str, ...], per_cell: int = 24
) -> CheckReport:
    """The audio demo model: hears every task and level, reasons from a description, keeps the format, and
    answers audio questions at chance (what the default run's RL must change)."""
    examples = held_out(tasks, difficulties, per_cell)
    texts = greedy_completions(policy, examples, WORD_OPTIONS)
    scores = hearing_scores(examples, texts)
    bars = dict.fromkeys(scores, HEARING_BAR)
    scores["reasoning"], bars["reasoning"] = reasoning_score(policy, examples[: 4 * len(tasks)]), REASONING_BAR
    scores["format"], bars["format"] = format_score(texts), FORMAT_BAR
    scores["answers at chance"], bars["answers at chance"] = chance_score(examples, texts), CHANCE_BAR
    return CheckReport(scores, bars)


def check_format_model(policy: Policy, size: int = 32) -> CheckReport:
    """The other embedded models: they answer the think prompt in the output format."""
    data = SyntheticAudioQA(size, HELD_OUT_SEED)
    texts = greedy_completions(policy, [data[i] for i in range(size)], THINK)
    return CheckReport({"format": format_score(texts)}, {"format": FORMAT_BAR})
