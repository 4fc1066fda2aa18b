"""Read TensorBoard event files in tests."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def read_scalars(log_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of every event of `tag` under `log_dir` (recursively), in step order."""
    points = []
    for events in sorted(Path(log_dir).rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        if tag in accumulator.Tags()["scalars"]:
            points += [(e.step, e.value) for e in accumulator.Scalars(tag)]
    return sorted(points)


def scalar_tags(log_dir: Path) -> set[str]:
    """Every scalar tag written under `log_dir`."""
    tags = set()
    for events in Path(log_dir).rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    return tags


def read_texts(log_dir: Path, tag: str) -> list[str]:
    """The text of every `add_text` event of `tag` under `log_dir`, in step order."""
    texts = []
    for events in sorted(Path(log_dir).rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"tensors": 0})
        accumulator.Reload()
        if f"{tag}/text_summary" in accumulator.Tags()["tensors"]:
            events_of_tag = accumulator.Tensors(f"{tag}/text_summary")
            texts += [e.tensor_proto.string_val[0].decode() for e in sorted(events_of_tag, key=lambda e: e.step)]
    return texts
