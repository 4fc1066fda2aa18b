"""Serving one generation's examples as the training steps that consume it.

GRPO samples once per generation: the examples of `steps_per_generation` optimizer steps, each made of
`accumulate_grad_batches` micro-batches, optimised for `num_iterations` passes. The Lightning loop runs one
`training_step` per item it draws, so `GenerationLoader` draws one batch of the whole generation's examples from
its inner loader and yields it as `micro_batches x passes` items: the first carries the examples, the others only
their position. Lightning's own accumulation, clipping and precision then apply unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GenerationPlan:
    """How many micro-batches one generation feeds, and how many passes are made over them."""

    micro_batches: int = 1  # accumulate_grad_batches x steps_per_generation
    passes: int = 1  # rollout.num_iterations (μ)

    def __post_init__(self) -> None:
        if self.micro_batches < 1 or self.passes < 1:
            raise ValueError(f"a generation needs >= 1 micro-batch and >= 1 pass, got {self}")

    @property
    def micro_steps(self) -> int:
        """Training steps (Lightning batches) per generation."""
        return self.micro_batches * self.passes


def micro_step_item(step: int, total: int) -> dict[str, Any]:
    """A training item after a generation's first: only its position (the module draws from the buffered rollout)."""
    return {"micro_step": step, "micro_steps": total}


class GenerationLoader:
    """Yields each batch of `loader` (one generation's examples) `plan.micro_steps` times as training items.

    Item contract: `{"examples", "skips", "micro_step": 0, "micro_steps": n}` for a generation's
    first item, `{"micro_step": i, "micro_steps": n}` for the others. The position the training loop has *taken*
    (`taken`, called by the datamodule's `on_before_batch_transfer`, never by prefetching) is saved in
    checkpoints, so a run stopped inside a generation resumes at its next micro-step.
    """

    def __init__(self, loader, plan: GenerationPlan) -> None:
        self.loader, self.plan = loader, plan
        self.sampler = loader.sampler
        self.last_taken = plan.micro_steps - 1  # a finished generation: the next item starts a new one
        self._resume_from: int | None = None

    def __len__(self) -> int:
        return len(self.loader) * self.plan.micro_steps

    def __iter__(self) -> Iterator[dict[str, Any]]:
        total = self.plan.micro_steps
        if self._resume_from is not None:  # the rest of the generation a checkpoint stopped inside
            start, self._resume_from = self._resume_from, None
            for step in range(start, total):
                yield micro_step_item(step, total)
        for batch in self.loader:
            yield {**batch, "micro_step": 0, "micro_steps": total}
            for step in range(1, total):
                yield micro_step_item(step, total)

    def taken(self, item: dict[str, Any]) -> None:
        """Record that the training loop took `item` (a generation's first item advances the data position)."""
        if item.get("micro_step") == 0:
            self.sampler.consumed += 1
        self.last_taken = item.get("micro_step", 0)

    def state_dict(self) -> dict[str, int]:
        """The sampler's epoch and position, and the micro-step of the current generation last trained on."""
        return {**self.sampler.state_dict(), "micro_step": self.last_taken, "micro_steps": self.plan.micro_steps}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue where `state` stopped: inside a generation, at its next micro-step."""
        total = state.get("micro_steps", 1)
        inside = state.get("micro_step", total - 1) + 1 < total
        if inside and total != self.plan.micro_steps:
            raise ValueError(
                f"the checkpoint stopped inside a generation of {total} micro-steps, but this run has "
                f"{self.plan.micro_steps} (trainer.accumulate_grad_batches x rollout.steps_per_generation x "
                "rollout.num_iterations): resume with the settings the run was started with"
            )
        # Inside a generation the epoch is not over even if its last batch was drawn: do not move to the next.
        self.sampler.load_state_dict(state, advance_finished_epoch=not inside)
        self._resume_from = state["micro_step"] + 1 if inside else None
        self.last_taken = state.get("micro_step", total - 1) if inside else self.plan.micro_steps - 1
