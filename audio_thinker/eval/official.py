"""`predictions_official.json`: predictions in the input format of MMAU's own scorer (`evaluation.py --input`).

Each entry is the benchmark item exactly as published (every field kept) plus `model_output`: the parsed answer
as the `mmau` scorer reads it (`format.mmau.official_output`: a bare letter becomes its option's text, anything
else is passed as written; no answer is ""). MMAU's script run on this file therefore prints the `mmau` numbers
of `metrics.json`: overall and per task and difficulty. One entry per prediction, so with `num_samples` > 1 an
item appears once per sample, as it counts in our mean per-sample accuracy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from audio_thinker.format.mmau import official_output


def official_items(
    predictions: Sequence[Mapping], items: Mapping[str, tuple[dict, list[str] | None]], letters: bool = True
) -> list[dict]:
    """The entries for `predictions`; `items` maps an example id to (its original record, its options)."""
    out = []
    for p in predictions:
        record, choices = items[p["id"]]
        out.append({**record, "model_output": official_output(p["answer"], choices, letters)})
    return out


def write_official(path: str | Path, entries: list[dict]) -> None:
    """A JSON list, as MMAU's script reads it."""
    Path(path).write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
