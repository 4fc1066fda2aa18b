"""metrics.json from a hand-made predictions file whose numbers are computed by hand below."""

from __future__ import annotations

import json

import pytest

from audio_thinker.eval.metrics import compute_metrics, read_predictions, summarize


def record(id, task, difficulty, correct, mode, think, answer, budget=None):
    return {
        "id": id,
        "task": task,
        "difficulty": difficulty,
        "budget": budget,
        "sample": 0,
        "completion": "",
        "answer": None,
        "gold": "",
        "correct": correct,
        "mode": mode,
        "think_tokens": think,
        "answer_tokens": answer,
    }


FREE = [
    record("a", "pitch", "easy", True, "think", 10, 1),
    record("b", "pitch", "hard", False, "no_think", 0, 1),
    record("c", "count", "easy", True, "malformed", 4, 3),
    record("d", "count", "hard", True, "think", 6, 2),
]
BUDGET_0 = [
    record("a", "pitch", "easy", True, "no_think", 0, 1, budget=0),
    record("b", "pitch", "hard", False, "no_think", 0, 2, budget=0),
]


@pytest.fixture
def predictions_file(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in FREE + BUDGET_0))
    return path


def test_free_pass_metrics_from_a_predictions_file(predictions_file):
    metrics = compute_metrics(read_predictions(predictions_file))
    assert metrics["n"] == 4 and metrics["n_examples"] == 4  # the budget-0 lines are not in the top level
    assert metrics["accuracy"] == pytest.approx(0.75)  # a, c, d right of 4
    assert metrics["accuracy_by_task"] == pytest.approx({"count": 1.0, "pitch": 0.5})  # c,d right; a right, b wrong
    assert metrics["accuracy_by_difficulty"] == pytest.approx({"easy": 1.0, "hard": 0.5})  # a,c; b wrong, d right
    assert metrics["think_rate"] == pytest.approx(0.5)  # a and d
    assert metrics["format_valid_rate"] == pytest.approx(0.75)  # c is malformed
    assert metrics["mean_think_tokens"] == pytest.approx(5.0)  # (10 + 0 + 4 + 6) / 4
    assert metrics["mean_answer_tokens"] == pytest.approx(1.75)  # (1 + 1 + 3 + 2) / 4


def test_each_budget_is_summarised_on_its_own(predictions_file):
    metrics = compute_metrics(read_predictions(predictions_file))
    zero = metrics["by_budget"]["0"]
    assert set(metrics["by_budget"]) == {"0"}
    assert zero["n"] == 2 and zero["accuracy"] == pytest.approx(0.5)  # a right, b wrong
    assert zero["think_rate"] == 0.0 and zero["mean_answer_tokens"] == pytest.approx(1.5)  # (1 + 2) / 2


def test_without_a_free_pass_the_top_level_covers_every_prediction():
    metrics = compute_metrics(BUDGET_0)
    assert metrics["n"] == 2 and metrics["accuracy"] == pytest.approx(0.5)


def test_samples_count_once_each_but_examples_once():
    samples = [record("a", "pitch", "easy", True, "think", 4, 1), record("a", "pitch", "easy", False, "think", 8, 1)]
    summary = summarize(samples)
    assert summary["n"] == 2 and summary["n_examples"] == 1
    assert summary["accuracy"] == pytest.approx(0.5)  # mean per-sample accuracy
    assert summary["mean_think_tokens"] == pytest.approx(6.0)  # (4 + 8) / 2


def scored(id, task, category, sub, mmau, choice):
    return {
        **record(id, task, "easy", mmau, "think", 1, 1),
        "category": category,
        "sub_category": sub,
        "scores": {"mmau": mmau, "choice": choice},
    }


def test_every_scorer_is_broken_down_by_task_category_and_sub_category():
    predictions = [
        scored("a", "sound", "Reasoning", "Counting", True, True),
        scored("b", "sound", "Reasoning", "Counting", True, False),  # e.g. a same-words-other-order option
        scored("c", "music", "Information Extraction", "Instrumentation", False, False),
        scored("d", "music", "Reasoning", "Temporal Reasoning", True, True),
    ]
    summary = summarize(predictions)
    assert summary["accuracy"] == pytest.approx(0.75)  # `correct` is the headline (here: mmau)
    assert summary["accuracy_by_category"] == pytest.approx({"Information Extraction": 0.0, "Reasoning": 1.0})
    assert summary["accuracy_by_sub_category"] == pytest.approx(
        {"Counting": 1.0, "Instrumentation": 0.0, "Temporal Reasoning": 1.0}
    )
    choice = summary["scorers"]["choice"]
    assert choice["accuracy"] == pytest.approx(0.5)  # a, d
    assert choice["by_task"] == pytest.approx({"music": 0.5, "sound": 0.5})
    assert choice["by_category"] == pytest.approx({"Information Extraction": 0.0, "Reasoning": 2 / 3})
    assert summary["scorers"]["mmau"]["by_sub_category"]["Counting"] == 1.0
    assert "scorers" not in summarize(FREE) and "accuracy_by_category" not in summarize(FREE)  # older records
