"""Which examples an evaluation grades, and their loading: stratified caps, lazy audio, skipped clips counted.

- `eval.max_examples` unset: every example of the split. Set: a sample stratified by task, each task's share
  as in the split (largest-remainder rounding), drawn at random (seeded) within each task, kept in file order;
  so a file sorted by task (MMAU) is not graded on its head alone.
- Audio is loaded one batch at a time while the evaluation runs (1,000 clips are not held at once). Under
  `data.on_error=skip` (the evaluation default) an unreadable clip is logged, counted and left out, and the
  others are graded; under `data.on_error=raise` the first one stops the run.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from audio_thinker.data.errors import SkippedExample
from audio_thinker.example import AudioQAExample

log = logging.getLogger(__name__)


def stratified_sample(labels: Sequence[str], n: int, seed: int = 0) -> list[int]:
    """Indices of `n` items spread over the strata of `labels` in proportion to their sizes, in file order."""
    if n >= len(labels):
        return list(range(len(labels)))
    strata: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        strata.setdefault(label, []).append(index)
    exact = {label: n * len(members) / len(labels) for label, members in strata.items()}
    quota = {label: int(share) for label, share in exact.items()}
    by_remainder = sorted(strata, key=lambda label: (quota[label] - exact[label], label))
    for label in by_remainder[: n - sum(quota.values())]:
        quota[label] += 1
    rng = random.Random(seed)
    return sorted(i for label, members in strata.items() for i in rng.sample(members, quota[label]))


def example_labels(dataset, key: str = "task") -> list[str]:
    """Each example's `key` (from the manifest's records when the dataset has them, so no audio is read)."""
    examples = getattr(dataset, "examples", None)
    if examples is None:
        examples = [dataset[i] for i in range(len(dataset))]
    return [str(getattr(ex, key, "unknown")) for ex in examples]


def choose_indices(dataset, max_examples: int | None, seed: int = 0) -> list[int]:
    """All indices, or a task-stratified sample of `max_examples` of them."""
    if max_examples is None or max_examples >= len(dataset):
        return list(range(len(dataset)))
    if max_examples < 1:
        raise ValueError(f"eval.max_examples must be >= 1 or null (all), got {max_examples}")
    return stratified_sample(example_labels(dataset), max_examples, seed)


@dataclass
class LazyExamples:
    """The chosen examples of `dataset`, loaded as they are iterated; skipped ones are kept in `skipped`.

    `items` maps each graded example's id to (its original record or {}, its options), without the audio.
    """

    dataset: object
    indices: list[int]
    prepare: Callable[[AudioQAExample], AudioQAExample] = lambda example: example
    skipped: list[SkippedExample] = field(default_factory=list)
    items: dict[str, tuple[dict, list[str] | None]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[AudioQAExample]:
        self.skipped.clear()
        for index in self.indices:
            item = self.dataset[index]
            if isinstance(item, SkippedExample):  # the dataset's on_error="skip" already logged why
                self.skipped.append(item)
                continue
            self.items[item.id] = (item.meta.get("record", {}), item.choices)
            yield self.prepare(item)
        if self.skipped:
            kinds = Counter(s.kind for s in self.skipped)
            log.warning("left out %d unloadable example(s): %s", len(self.skipped), dict(kinds))


def default_scorer(dataset) -> str:
    """`eval.scorer=auto`: MMAU's rule for MMAU files, else our `choice` matcher."""
    examples = getattr(dataset, "examples", None) or []
    return "mmau" if examples and examples[0].meta.get("source_format") == "mmau" else "choice"
