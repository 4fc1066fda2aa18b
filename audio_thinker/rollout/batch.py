"""A rollout: G sampled completions for each prompt of one generation, and everything the loss passes need.

A generation covers `rollout.steps_per_generation` optimizer steps (each `trainer.accumulate_grad_batches`
micro-batches) on this rank. `RolloutCallback` samples it and has it scored (`RewardCallback.score` returns a new
value with `dataclasses.replace`), then hands the scored rollout to `GRPOModule.start_generation`; the module draws
its micro-batches from it with `micro_batch(i)`. Each example's G completions are adjacent rows, so a run of
examples is a run of rows: `completion_rows` is the one place that maps one to the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch

from audio_thinker.example import AudioQAExample
from audio_thinker.format.parsing import ParsedCompletion
from audio_thinker.models.policy import PromptEncoding


@dataclass(frozen=True)
class Rollout:
    """The sampled completions of one generation, aligned as [B*G] with each prompt's G samples adjacent."""

    examples: list[AudioQAExample]  # [B]
    group_size: int
    encoding: PromptEncoding  # prompts [B, P] and their audio features, computed once
    completion_ids: torch.Tensor  # [B*G, C]
    completion_mask: torch.Tensor  # [B*G, C] 1 up to and including the stop token
    completions: list[ParsedCompletion]  # [B*G]
    think_lengths: list[int]  # [B*G] tokens inside <think>
    answer_lengths: list[int]  # [B*G] tokens inside <answer>
    temperature: float = 1.0
    num_micro_batches: int = 1  # the generation's micro-batches: accumulate_grad_batches x steps_per_generation
    sampling_logps: torch.Tensor | None = None  # [B*G, C] log-probs the engine reported while sampling, if any
    old_logps: torch.Tensor | None = None  # [B*G, C] when it outlives one optimizer step (μ or steps/gen > 1)
    rewards: torch.Tensor | None = None  # [B*G] combined reward
    reward_terms: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> [B*G], NaN = n/a
    advantages: torch.Tensor | None = None  # [B*G]

    @classmethod
    def empty(cls, group_size: int, micro_batches: int, device: torch.device, temperature: float) -> Rollout:
        """The rollout of a rank whose examples were all skipped: it still takes part in every step-wide collective."""
        nothing = torch.zeros((0, 1), dtype=torch.long, device=device)
        return cls(
            examples=[],
            group_size=group_size,
            encoding=PromptEncoding(nothing, nothing),
            completion_ids=nothing,
            completion_mask=nothing,
            completions=[],
            think_lengths=[],
            answer_lengths=[],
            temperature=temperature,
            num_micro_batches=micro_batches,
        )

    @property
    def size(self) -> int:
        """Number of completions, B*G."""
        return self.completion_ids.shape[0]

    def example_of(self, index: int) -> AudioQAExample:
        """The example completion `index` answers."""
        return self.examples[index // self.group_size]

    def expanded_examples(self) -> list[AudioQAExample]:
        """Examples aligned with completions: [B*G]."""
        return [ex for ex in self.examples for _ in range(self.group_size)]

    # -- micro-batches ---------------------------------------------------------------------------------------
    def micro_batch_examples(self, index: int) -> range:
        """Example indices of micro-batch `index`: the examples split into `num_micro_batches` near-equal runs."""
        if not 0 <= index < self.num_micro_batches:
            raise IndexError(f"micro-batch {index} of a rollout with {self.num_micro_batches}")
        size, extra = divmod(len(self.examples), self.num_micro_batches)
        start = index * size + min(index, extra)
        return range(start, start + size + (index < extra))

    def completion_rows(self, examples: range) -> slice:
        """The completion rows [B*G] of a contiguous run of examples (each example's G samples are adjacent)."""
        return slice(examples.start * self.group_size, examples.stop * self.group_size)

    def micro_batch_rows(self, index: int) -> slice:
        """The completion rows of micro-batch `index`."""
        return self.completion_rows(self.micro_batch_examples(index))

    def micro_batch(self, index: int) -> Rollout:
        """The rollout of micro-batch `index` alone (its examples and their G completions each)."""
        return self.select(self.micro_batch_examples(index))

    def select(self, example_indices: range) -> Rollout:
        """The rollout restricted to a contiguous run of examples, padding columns trimmed."""
        if len(example_indices) == len(self.examples):
            return replace(self, num_micro_batches=1)
        rows = self.completion_rows(example_indices)
        mask = self.completion_mask[rows]
        width = max(int(mask.sum(dim=1).max()) if mask.numel() else 0, 1)  # keep at least one column
        cols = slice(0, width)

        def cut(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor[rows, cols]

        return replace(
            self,
            examples=self.examples[example_indices.start : example_indices.stop],
            encoding=self.encoding.select(example_indices),
            completion_ids=self.completion_ids[rows, cols],
            completion_mask=mask[:, cols],
            completions=self.completions[rows],
            think_lengths=self.think_lengths[rows],
            answer_lengths=self.answer_lengths[rows],
            num_micro_batches=1,
            sampling_logps=cut(self.sampling_logps),
            old_logps=cut(self.old_logps),
            rewards=None if self.rewards is None else self.rewards[rows],
            reward_terms={name: values[rows] for name, values in self.reward_terms.items()},
            advantages=None if self.advantages is None else self.advantages[rows],
        )

    def to(self, device: torch.device | str) -> Rollout:
        """The rollout with every tensor on `device` (checkpoints load on the CPU)."""

        def move(value):
            return value.to(device) if isinstance(value, torch.Tensor) else value

        encoding = replace(self.encoding, **{k: move(v) for k, v in _shallow(self.encoding).items()})
        tensors = {f.name: move(getattr(self, f.name)) for f in fields(self)}
        terms = {name: values.to(device) for name, values in self.reward_terms.items()}
        return replace(self, **{**tensors, "encoding": encoding, "reward_terms": terms})

    # -- checkpoints -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only (loads with `weights_only=True`); examples keep their text, not audio."""
        state = _shallow(self)
        state["examples"] = [_example_state(ex) for ex in self.examples]
        state["encoding"] = _shallow(self.encoding)
        state["completions"] = [_shallow(c) for c in self.completions]
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Rollout:
        """The rollout `state_dict` saved (examples without their audio: the encoding already holds it)."""
        return cls(
            **{
                **state,
                "examples": [AudioQAExample(**ex) for ex in state["examples"]],
                "encoding": PromptEncoding(**state["encoding"]),
                "completions": [ParsedCompletion(**c) for c in state["completions"]],
            }
        )


def _shallow(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict, values not copied (unlike `dataclasses.asdict`)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _example_state(example: AudioQAExample) -> dict[str, Any]:
    """An example's fields without audio, and its meta reduced to plain values."""
    plain = (str, int, float, bool, type(None))
    meta = {k: v for k, v in example.meta.items() if isinstance(v, plain)}
    return {**_shallow(example), "audio": None, "meta": meta}
