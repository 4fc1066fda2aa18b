"""Validation records and their `val/*` numbers (hand-computed), and `Validator` on the tiny model."""

from __future__ import annotations

import pytest

from audio_thinker.eval.validation import Validator, ValRecord, unique_records, validation_metrics
from audio_thinker.format.prompts import THINK


def _record(id_: str, task: str, difficulty: str, correct: bool, mode: str = "think", think: int = 0) -> ValRecord:
    return ValRecord(id_, task, difficulty, correct, mode, think)


def test_metrics_are_rates_over_examples_and_by_task_and_difficulty():
    records = [
        _record("a", "pitch", "easy", True, "think", 12),
        _record("b", "pitch", "hard", False, "no_think", 0),
        _record("c", "count", "hard", True, "think", 6),
        _record("d", "count", "easy", False, "malformed", 0),
    ]
    assert validation_metrics(records) == {
        "val/accuracy": 0.5,
        "val/think_rate": 0.5,
        "val/think_length": 4.5,  # (12 + 0 + 6 + 0) / 4: zeros included, as training's think/length
        "val/malformed_rate": 0.25,
        "val/examples": 4.0,
        "val/accuracy_by_task/count": 0.5,
        "val/accuracy_by_task/pitch": 0.5,
        "val/accuracy_by_difficulty/easy": 0.5,
        "val/accuracy_by_difficulty/hard": 0.5,
    }
    assert validation_metrics([]) == {}


def test_examples_repeated_by_a_distributed_sampler_count_once():
    # Two ranks of a 3-example set: the sampler pads rank 1 with example "a" again.
    rank0 = [_record("a", "t", "easy", True), _record("c", "t", "easy", False)]
    rank1 = [_record("b", "t", "easy", False), _record("a", "t", "easy", True)]
    unique = unique_records(rank0 + rank1)
    assert [r.id for r in unique] == ["a", "c", "b"]
    assert validation_metrics(unique)["val/accuracy"] == pytest.approx(1 / 3)


def test_bad_settings_fail_naming_the_key():
    with pytest.raises(ValueError, match="validation.max_new_tokens"):
        Validator(THINK, max_new_tokens=0)
    with pytest.raises(ValueError, match="unknown scorer|scorer"):
        Validator(THINK, scorer="exact")


def test_grading_is_the_eval_protocol_greedy(tiny_policy, val_examples):
    """The records agree with `eval.predict`'s free greedy pass on the same examples (one protocol, not two)."""
    from audio_thinker.eval.predict import predict

    records = Validator(THINK, max_new_tokens=24, batch_size=3).grade(tiny_policy, val_examples)
    reference = predict(tiny_policy, val_examples, THINK, max_new_tokens=24, batch_size=4)
    assert [(r.id, r.correct, r.mode, r.think_tokens) for r in records] == [
        (p.id, p.correct, p.mode, p.think_tokens) for p in reference
    ]
    assert [r.task for r in records] == [ex.task for ex in val_examples]
