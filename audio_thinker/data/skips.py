"""The skip ledger: what the data policy skipped during a run, and the point where skipping must stop the run.

Under `data.on_error=skip` a bad record or audio file is logged and left out. The ledger keeps that honest:

- It counts *distinct* examples (keyed by their file:line or dataset index), so a bad file met again in every
  epoch counts once, by kind (`corrupt_audio`, `missing_field`, ...): the `data/skipped` and
  `data/skipped/<kind>` scalars, and a one-line summary at the end of the run.
- It stops the run (`NoUsableDataError`) when `max_empty_steps` consecutive steps had no usable example, or when
  the estimated share of the training set that cannot be used passes `max_skip_fraction`:

      share = 1 - (1 - r)(1 - d)

  with r the share of manifest records dropped when it was read and d the share of draws skipped since (the
  audio of a record that parsed could not be loaded). d is judged once `min_draws` examples were drawn, so one
  unlucky first batch does not stop a run.

Pure Python, no Lightning: the rollout callback records each step's batch, calls `check` and logs `metrics()`;
`state_dict`/`load_state_dict` carry the counts across a resume.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from audio_thinker.data.errors import DataError, SkippedExample

# Documented defaults (also in configs/data/*.yaml).
MAX_SKIP_FRACTION = 0.5
MAX_EMPTY_STEPS = 3
MIN_DRAWS = 20


class NoUsableDataError(DataError):
    """Training would go on without (enough) data: too many skipped examples."""


@dataclass
class SkipLedger:
    """Distinct skipped examples by kind, draws, and the stop rules of the module docstring.

    Attributes:
        max_skip_fraction: stop when the estimated unusable share of the training set exceeds this (0..1).
        max_empty_steps: stop after this many consecutive steps with no usable example.
        records: manifest records read (usable + dropped at load); 0 when the dataset has no records.
        min_draws: draws needed before the skipped share of draws is judged.
    """

    max_skip_fraction: float = MAX_SKIP_FRACTION
    max_empty_steps: int = MAX_EMPTY_STEPS
    records: int = 0
    min_draws: int = MIN_DRAWS

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_skip_fraction <= 1.0:
            raise ValueError(f"data.max_skip_fraction must be within [0, 1], got {self.max_skip_fraction}")
        if self.max_empty_steps < 1:
            raise ValueError(f"data.max_empty_steps must be >= 1, got {self.max_empty_steps}")
        self.distinct: dict[str, str] = {}  # where -> kind, one entry per skipped example
        self.record_skips = 0  # of `distinct`: dropped while the manifest was read
        self.draws = self.skipped_draws = self.empty_steps = 0
        self.last: SkippedExample | None = None  # the latest skip, quoted in errors

    # -- recording ---------------------------------------------------------------------------------------
    def record_load(self, dropped: Iterable[SkippedExample]) -> None:
        """Records dropped while the manifest was read (counted once, never drawn)."""
        for item in dropped:
            if item.where not in self.distinct:
                self.record_skips += 1
            self._add(item)

    def record(self, kept: int, skipped: Iterable[SkippedExample]) -> None:
        """One step's draws: `kept` usable examples and the stand-ins of the skipped ones."""
        skipped = list(skipped)
        for item in skipped:
            self._add(item)
        self.draws += kept + len(skipped)
        self.skipped_draws += len(skipped)
        self.empty_steps = self.empty_steps + 1 if kept == 0 else 0

    def _add(self, item: SkippedExample) -> None:
        self.distinct.setdefault(item.where, item.kind)
        self.last = item

    # -- the stop rules ----------------------------------------------------------------------------------
    @property
    def skipped_share(self) -> float:
        """Estimated share of the training set that cannot be used (module docstring)."""
        r = self.record_skips / self.records if self.records else 0.0
        d = self.skipped_draws / self.draws if self.draws >= self.min_draws else 0.0
        return 1.0 - (1.0 - r) * (1.0 - d)

    def problem(self) -> str | None:
        """Why training must stop now, or None."""
        if self.empty_steps >= self.max_empty_steps:
            return (
                f"{self.empty_steps} consecutive step(s) had no usable example (data.max_empty_steps="
                f"{self.max_empty_steps}): every example drawn was skipped"
            )
        if self.skipped_share > self.max_skip_fraction:
            return (
                f"about {self.skipped_share:.0%} of the training data cannot be used, more than "
                f"data.max_skip_fraction={self.max_skip_fraction:g}"
            )
        return None

    def check(self, any_rank: Callable[[bool], bool] = bool) -> None:
        """Raise `NoUsableDataError` when a stop rule fires (on any rank, through `any_rank`, so all stop)."""
        problem = self.problem()
        if not any_rank(problem is not None):
            return
        if problem is None:
            raise NoUsableDataError("another rank ran out of usable training data (see its error)", kind="no_data")
        example = f" Last skipped: {self.last.where}: {self.last.reason}." if self.last else ""
        raise NoUsableDataError(
            f"stopping: {problem}; {self.summary()}.{example} Fix or remove the bad rows (`audio-thinker data check "
            "<manifest>` lists them all), or raise the limit if this is expected.",
            kind="no_data",
        )

    # -- reporting ---------------------------------------------------------------------------------------
    def by_kind(self) -> dict[str, int]:
        """Distinct skipped examples per kind."""
        return dict(sorted(Counter(self.distinct.values()).items()))

    def metrics(self) -> dict[str, float]:
        """`data/skipped` (distinct examples) and `data/skipped/<kind>`."""
        return {
            "data/skipped": float(len(self.distinct)),
            **{f"data/skipped/{kind}": float(n) for kind, n in self.by_kind().items()},
        }

    def summary(self) -> str:
        """One line: distinct skipped examples by kind, and the skipped share of draws."""
        if not self.distinct:
            return f"no example skipped ({self.draws} drawn)"
        kinds = ", ".join(f"{kind}: {n}" for kind, n in self.by_kind().items())
        loaded = f", {self.record_skips} of them dropped when the manifest was read" if self.record_skips else ""
        return (
            f"{len(self.distinct)} distinct example(s) skipped ({kinds}){loaded}; {self.skipped_draws} of "
            f"{self.draws} draws skipped"
        )

    # -- resume ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Plain values only (checkpoints load with weights_only=True)."""
        return {
            "distinct": dict(self.distinct),
            "record_skips": self.record_skips,
            "draws": self.draws,
            "skipped_draws": self.skipped_draws,
            "empty_steps": self.empty_steps,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue the counts of `state` (the limits stay this run's)."""
        self.distinct = dict(state["distinct"])
        self.record_skips, self.draws = int(state["record_skips"]), int(state["draws"])
        self.skipped_draws, self.empty_steps = int(state["skipped_draws"]), int(state["empty_steps"])
