"""One run of a contender, each of its steps followed by a tight-floor step on the next prepared batch."""

from __future__ import annotations

from dataclasses import dataclass, field

from .floors import FloorModel, naive_step, tight_step
from .stats import Pairs, Stopwatch
from .workload import StepShape


class PairedFloor:
    """The tight floor, stepped right after each contender step and timed on its own stopwatch."""

    def __init__(self, floor: FloorModel, device: str) -> None:
        self.floor, self.device = floor, device
        self.watch = Stopwatch(device)
        self.shapes: list[StepShape] = []
        self.done = 0

    def begin(self) -> None:
        """Start the pairs of a new contender run."""
        self.watch, self.shapes = Stopwatch(self.device), []

    def next_batch(self):
        """The next prepared batch (they cycle)."""
        batch = self.floor.batches[self.done % len(self.floor.batches)]
        self.done += 1
        return batch

    def step(self) -> None:
        """One timed tight-floor step."""
        batch = self.next_batch()
        self.watch.start()
        shape = tight_step(self.floor, batch)
        self.watch.stop()
        self.shapes.append(shape)


@dataclass
class Run:
    """What one run of one contender measured (warm-up steps included; `pairs` drops them)."""

    watch: Stopwatch
    floor: Stopwatch
    shapes: list[StepShape]
    floor_shapes: list[StepShape]
    encoder_clips: list[int] = field(default_factory=list)  # audio clips through the encoder, per step
    encoder_calls: list[int] = field(default_factory=list)  # encoder forward calls (batched), per step
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase, summed over measured steps

    def pairs(self, warmup: int) -> Pairs:
        """The measured steps and their paired floor steps."""
        return Pairs().add(self.watch, self.floor, skip=warmup)


def run_naive_floor(paired: PairedFloor, total_steps: int) -> Run:
    """The naive loop as a contender: its own steps on the floor model, each paired with a tight step."""
    paired.begin()
    watch, shapes = Stopwatch(paired.device), []
    for _ in range(total_steps):
        batch = paired.next_batch()
        watch.start()
        shapes.append(naive_step(paired.floor, batch))
        watch.stop()
        paired.step()
    return Run(watch, paired.watch, shapes, paired.shapes)
