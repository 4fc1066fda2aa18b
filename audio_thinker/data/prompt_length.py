"""Does an example's prompt fit the model? Text tokens + audio tokens + the completion budget vs. the context.

A 300 KB question would otherwise pass every check and then ask generation for tens of GB at the first rollout.
Two places check it, each naming the example:
- `audio-thinker data check --model PATH`: the prompt as rendered, plus the audio tokens of the clip's real
  duration (capped at `max_audio_seconds`).
- training, when the manifest is loaded (`fit_to_context`, before the first step): the prompt as rendered, plus
  the audio tokens of the record's declared `duration` when it has one (audio is only decoded when drawn; a clip
  is capped at `max_audio_seconds`, so its tokens are bounded). Under `data.on_error=skip` such examples are
  dropped and counted (kind `prompt_too_long`); under `raise` the first one stops the run.

Characters are counted before anything is tokenised: no token of the vocabulary covers more than
`PromptBudget.chars_per_token` characters, so a question and options longer than the context times that cannot
fit, and are refused without rendering or tokenising them (a 50 MB question once took 10 GB in the tokenizer).

Audio tokens follow the Whisper-style encoders of Qwen2-Audio and Qwen2.5-Omni: one mel frame per `hop_length`
samples (at most one feature-extractor chunk), then two stride-2 stages (`processors.audio_token_count`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import torch

from audio_thinker.data.errors import DataFormatError, skip
from audio_thinker.data.limits import prompt_texts
from audio_thinker.example import AudioQAExample
from audio_thinker.models.processors import audio_token_count

logger = logging.getLogger("audio_thinker.data")


def context_length(config) -> int | None:
    """The largest sequence the model's positions cover (None when the config does not say)."""
    config = getattr(config, "thinker_config", config)  # a full Qwen2.5-Omni: its thinker
    return getattr(config.get_text_config(), "max_position_embeddings", None)


@dataclass
class PromptBudget:
    """What fits: `context` positions hold the prompt and up to `max_new_tokens` completion tokens.

    Attributes:
        processor: the policy's processor (or tokenizer, for text-only models): renders and tokenises prompts.
        template: the `PromptTemplate` the rollout uses.
        context: the model's context length in tokens.
        max_new_tokens: the completion budget (`rollout.max_new_tokens`).
        has_audio: whether prompts carry one audio clip (then `processor.feature_extractor` sizes it).
    """

    processor: object
    template: object
    context: int
    max_new_tokens: int
    has_audio: bool = True

    @classmethod
    def for_policy(cls, policy, template, max_new_tokens: int) -> PromptBudget | None:
        """The budget of a loaded policy (None when its config has no context length)."""
        context = context_length(policy.hf_model.config)
        return None if context is None else cls(policy.processor, template, context, max_new_tokens, policy.has_audio)

    @classmethod
    def for_model(cls, path: str, template, max_new_tokens: int) -> PromptBudget | None:
        """The budget of a model by hub id, local path or embedded name: its config and processor, no weights."""
        from audio_thinker.models.families import family_of
        from audio_thinker.models.sources import read_model_config, resolve_path

        config = read_model_config(path, key="--model")
        source = resolve_path(path)
        context = context_length(config)
        has_audio = getattr(getattr(config, "thinker_config", config), "audio_config", None) is not None
        processor = family_of(config.model_type).load_processor(source)
        return None if context is None else cls(processor, template, context, max_new_tokens, has_audio)

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    @cached_property
    def chars_per_token(self) -> int:
        """No token covers more characters than this: 4x the longest vocabulary entry (Unicode normalisation, NFC in
        Qwen's tokenizers, may fold up to 4 characters into one before the vocabulary is matched)."""
        return 4 * max(len(token) for token in self.tokenizer.get_vocab())

    @property
    def max_text_chars(self) -> int:
        """Question and options longer than this (in characters) cannot fit with the completion budget."""
        return max(0, self.context - self.max_new_tokens) * self.chars_per_token

    def text_tokens(self, examples: Sequence[AudioQAExample]) -> list[int | None]:
        """Tokens of each rendered prompt, its audio placeholder counted as one token; None for a prompt whose texts
        alone are over `max_text_chars` characters (never rendered nor tokenised: it cannot fit)."""
        fits = [text_chars(ex) <= self.max_text_chars for ex in examples]
        rendered = [
            self.processor.apply_chat_template(
                self.template.messages(ex, with_audio=self.has_audio), add_generation_prompt=True, tokenize=False
            )
            for ex, ok in zip(examples, fits, strict=True)
            if ok
        ]
        counts = iter(self.tokenizer(rendered, add_special_tokens=False)["input_ids"] if rendered else [])
        return [len(next(counts)) if ok else None for ok in fits]

    def audio_tokens(self, seconds: float | None) -> int:
        """Tokens a clip of `seconds` becomes (0 without audio or when the duration is unknown)."""
        if not self.has_audio or not seconds:
            return 0
        extractor = self.processor.feature_extractor
        samples = min(round(seconds * extractor.sampling_rate), extractor.n_samples)
        frames = torch.tensor(math.ceil(samples / extractor.hop_length))
        return int(audio_token_count(frames))

    def prompt_tokens(self, text_tokens: int, seconds: float | None) -> int:
        """The whole prompt: text (with one placeholder) where the placeholder becomes the clip's tokens."""
        audio = self.audio_tokens(seconds)
        return text_tokens + audio - 1 if audio else text_tokens

    def problem(
        self, example: AudioQAExample, text_tokens: int | None, seconds: float | None
    ) -> DataFormatError | None:
        """The error for an example whose prompt and completion budget do not fit the context, else None.

        `text_tokens` None: the texts are too long in characters alone (`text_tokens`).
        """
        where = example.meta.get("source", "")
        if text_tokens is None:
            chars = text_chars(example)
            return DataFormatError(
                f"{where} (id {example.id!r}): the question and options are {chars:,} characters, so at least "
                f"{math.ceil(chars / self.chars_per_token):,} tokens (no token covers more than "
                f"{self.chars_per_token} characters): with rollout.max_new_tokens={self.max_new_tokens} they cannot "
                f"fit the model's context of {self.context}. Shorten the question or options, or remove the row.",
                kind="prompt_too_long",
                path=where.rsplit(":", 1)[0] or None,
            )
        prompt = self.prompt_tokens(text_tokens, seconds)
        if prompt + self.max_new_tokens <= self.context:
            return None
        audio = f", {self.audio_tokens(seconds)} of them audio ({seconds:.1f} s)" if self.audio_tokens(seconds) else ""
        return DataFormatError(
            f"{where} (id {example.id!r}): the prompt is {prompt} tokens{audio} (question {len(example.question)} "
            f"characters); with rollout.max_new_tokens={self.max_new_tokens} it needs {prompt + self.max_new_tokens} "
            f"positions but the model's context is {self.context}. Shorten the question or options, or remove the "
            "row.",
            kind="prompt_too_long",
            path=where.rsplit(":", 1)[0] or None,
        )


def text_chars(example: AudioQAExample) -> int:
    """Characters of the example's own texts in its prompt: question, options and system turn."""
    return sum(len(text) for _, text in prompt_texts(example))


def fit_datamodule(datamodule, policy, template, max_new_tokens: int, max_audio_seconds: float | None) -> None:
    """`fit_to_context` on the training and validation sets of an `AudioQADataModule`, for `policy`."""
    from audio_thinker.data.datamodule import innermost_dataset  # imports lightning: only when training

    budget = PromptBudget.for_policy(policy, template, max_new_tokens)
    for dataset in (datamodule.train_set, datamodule.val_set):
        fit_to_context(budget, innermost_dataset(dataset), max_audio_seconds, datamodule.on_error)


def fit_to_context(budget: PromptBudget | None, dataset, max_audio_seconds: float | None, on_error: str) -> int:
    """Check every record of a manifest dataset at load (see the module docstring); return how many were dropped.

    Datasets without records in memory (synthetic ones, say) are left alone.
    """
    dataset = getattr(dataset, "dataset", dataset)  # under SkipOnError
    examples = getattr(dataset, "examples", None)
    if budget is None or not examples or not hasattr(dataset, "skipped_records"):
        return 0
    kept = []
    for example, tokens in zip(examples, budget.text_tokens(examples), strict=True):
        seconds = example.meta.get("duration")
        if seconds is not None and max_audio_seconds is not None:
            seconds = min(seconds, max_audio_seconds)
        error = budget.problem(example, tokens, seconds)
        if error is None:
            kept.append(example)
        elif on_error == "raise":
            raise error
        else:
            dataset.skipped_records.append(skip(error, example.meta.get("source", example.id), example.id))
    dropped = len(examples) - len(kept)
    if not kept:
        raise DataFormatError(
            f"no example's prompt fits the model's context ({budget.context} tokens): see the warnings above",
            kind="prompt_too_long",
        )
    dataset.examples = kept
    return dropped
