"""Aggregate graded predictions into the numbers of `metrics.json`.

Every rate is a fraction in [0, 1] over predictions (with `num_samples` > 1, each sample counts once, so
accuracy is the mean per-sample accuracy). Token lengths are means over all predictions, zeros included,
as training logs `think/length`. A prediction is a mapping with the fields of `predict.Prediction`.
`accuracy` and `accuracy_by_*` follow the headline scorer (`correct`); `scorers` holds the same breakdown for
every scorer the predictions were graded by (`scores`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

# Breakdown keys: a prediction field, reported as `accuracy_by_<key>` (category keys only when present).
BREAKDOWNS = ("task", "difficulty", "category", "sub_category")


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean (0.0 for no values, so an empty group never raises)."""
    values = list(values)
    return float(sum(values)) / len(values) if values else 0.0


Verdict = Callable[[Mapping], bool]


def headline(p: Mapping) -> bool:
    """The headline scorer's verdict on a prediction."""
    return bool(p["correct"])


def scored_by(name: str) -> Verdict:
    """The verdict of scorer `name` on a prediction."""
    return lambda p: bool(p["scores"][name])


def accuracy_by(predictions: list[Mapping], key: str, verdict: Verdict = headline) -> dict[str, float]:
    """Accuracy per value of `key` (e.g. task, difficulty), keys sorted."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for p in predictions:
        groups[str(p[key])].append(verdict(p))
    return {name: mean(groups[name]) for name in sorted(groups)}


def breakdown(predictions: list[Mapping], verdict: Verdict = headline, prefix: str = "accuracy_by_") -> dict:
    """Accuracy by every key of `BREAKDOWNS` the predictions carry."""
    keys = [key for key in BREAKDOWNS if predictions and all(key in p for p in predictions)]
    return {f"{prefix}{key}": accuracy_by(predictions, key, verdict) for key in keys}


def scorer_summaries(predictions: list[Mapping]) -> dict[str, dict]:
    """{scorer: {accuracy, by_task, by_difficulty, ...}} for every scorer in the predictions' `scores`."""
    names = dict.fromkeys(name for p in predictions for name in p.get("scores", {}))
    out = {}
    for name in names:
        verdict = scored_by(name)
        out[name] = {"accuracy": mean(verdict(p) for p in predictions), **breakdown(predictions, verdict, "by_")}
    return out


def summarize(predictions: list[Mapping]) -> dict:
    """Accuracy (overall and by task, difficulty, category), per-scorer accuracy, think rate, lengths, counts."""
    summary = {
        "n": len(predictions),
        "n_examples": len({p["id"] for p in predictions}),
        "accuracy": mean(headline(p) for p in predictions),
        **breakdown(predictions),
    }
    if scorers := scorer_summaries(predictions):
        summary["scorers"] = scorers
    return summary | {
        "think_rate": mean(p["mode"] == "think" for p in predictions),
        "format_valid_rate": mean(p["mode"] != "malformed" for p in predictions),
        "mean_think_tokens": mean(p["think_tokens"] for p in predictions),
        "mean_answer_tokens": mean(p["answer_tokens"] for p in predictions),
    }


def by_budget(predictions: list[Mapping]) -> dict[int | None, list[Mapping]]:
    """Predictions grouped by reasoning budget (None: the free pass), in first-seen order."""
    groups: dict[int | None, list[Mapping]] = {}
    for p in predictions:
        groups.setdefault(p["budget"], []).append(p)
    return groups


def compute_metrics(predictions: list[Mapping]) -> dict:
    """The content of `metrics.json`: the free pass's summary at the top, each budget's under `by_budget`.

    Without a free pass the top-level summary covers all predictions.
    """
    groups = by_budget(predictions)
    metrics = summarize(groups.get(None, predictions))
    budgets = {str(budget): summarize(group) for budget, group in groups.items() if budget is not None}
    if budgets:
        metrics["by_budget"] = budgets
    return metrics


def read_predictions(path: str | Path) -> list[dict]:
    """The records of a `predictions.jsonl` file."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_predictions(predictions: Iterable[Mapping], path: str | Path) -> None:
    """One JSON record per line."""
    with open(path, "w", encoding="utf-8") as f:
        for p in predictions:
            f.write(json.dumps(dict(p), ensure_ascii=False) + "\n")
