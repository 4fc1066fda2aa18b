"""Timing and statistics: paired step times, per-round ratios, medians with bootstrap 95% intervals.

Every measured contender step is followed by one tight-floor step on the same shapes, taken moments later under
the same machine load: their ratio is the step in units of the floor. A round is one run of each contender; its
value is the median of its per-step ratios, and a figure is the median over rounds with a percentile bootstrap
interval over rounds (steps inside one run are not independent; rounds are the honest unit).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import torch

RESAMPLES = 10_000


class Stopwatch:
    """Wall-clock and process CPU time of spans; waits for queued GPU work so a timestamp means it is done."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self._start = (0.0, 0.0)

    def _now(self) -> tuple[float, float]:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter(), time.process_time()

    def start(self) -> None:
        """Open a span."""
        self._start = self._now()

    def stop(self) -> None:
        """Close the span and record it."""
        wall, cpu = self._now()
        self.wall.append(wall - self._start[0])
        self.cpu.append(cpu - self._start[1])


@dataclass
class Pairs:
    """One run of one contender: its measured steps and the tight-floor step taken right after each."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    floor_wall: list[float] = field(default_factory=list)
    floor_cpu: list[float] = field(default_factory=list)

    def add(self, step: Stopwatch, floor: Stopwatch, skip: int = 0) -> Pairs:
        """Take the spans of `step` and `floor` after the first `skip` (the warm-up steps)."""
        if len(step.wall) != len(floor.wall):
            raise RuntimeError(f"{len(step.wall)} contender steps but {len(floor.wall)} paired floor steps")
        self.wall += step.wall[skip:]
        self.cpu += step.cpu[skip:]
        self.floor_wall += floor.wall[skip:]
        self.floor_cpu += floor.cpu[skip:]
        return self

    def ratio(self, clock: str = "wall") -> float:
        """Median over steps of (step / its paired floor step), on the wall clock or on CPU time."""
        steps, floors = (self.wall, self.floor_wall) if clock == "wall" else (self.cpu, self.floor_cpu)
        return median([s / f for s, f in zip(steps, floors, strict=True)])


def median(values: list[float]) -> float:
    """statistics.median, NaN for no values."""
    return statistics.median(values) if values else math.nan


@dataclass(frozen=True)
class Estimate:
    """A median and its bootstrap 95% interval."""

    median: float
    low: float
    high: float

    def met_below(self, target: float) -> bool:
        """A "≤ target" goal is met only when the whole interval is at or below it."""
        return self.high <= target

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "low": self.low, "high": self.high}

    def map(self, function) -> Estimate:
        """The estimate of an increasing function of the quantity."""
        return Estimate(function(self.median), function(self.low), function(self.high))

    def __str__(self) -> str:
        return f"{self.median:.3f} [{self.low:.3f}, {self.high:.3f}]"


NAN = Estimate(math.nan, math.nan, math.nan)


def bootstrap_median(values: list[float], level: float = 0.95, resamples: int = RESAMPLES, seed: int = 0) -> Estimate:
    """The median of `values` with a percentile bootstrap interval (resampling the values with replacement)."""
    data = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if data.size == 0:
        return NAN
    rng = np.random.default_rng(seed)
    medians = np.median(data[rng.integers(0, data.size, size=(resamples, data.size))], axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(medians, [tail, 100 - tail])
    return Estimate(float(np.median(data)), float(low), float(high))


def per_round(rounds: list[Pairs], clock: str = "wall") -> list[float]:
    """Each round's paired ratio."""
    return [pairs.ratio(clock) for pairs in rounds]


def ratio_of(numerator: list[Pairs], denominator: list[Pairs], clock: str = "wall") -> Estimate:
    """Contender A over contender B, round by round (both in units of the floor they were paired with)."""
    values = [a / b for a, b in zip(per_round(numerator, clock), per_round(denominator, clock), strict=True)]
    return bootstrap_median(values)


def overhead_pct(ratio: float) -> float:
    """The share of a step the floor does not spend: 100 (1 - floor / step), from step / floor."""
    return 100 * (1 - 1 / ratio) if ratio > 0 else math.nan
