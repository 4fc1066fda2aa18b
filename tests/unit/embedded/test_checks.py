"""The build's checks tell a model that hears from one that does not, on held-out clips."""

from __future__ import annotations

from audio_thinker.embedded.architecture import build_model, build_processor, build_tokenizer
from audio_thinker.embedded.checks import HEARING_BAR, CheckReport, chance_score, check_listening_model, held_out
from audio_thinker.embedded.listening import DIFFICULTIES, LISTENING_TASKS
from audio_thinker.models.audio_policy import Qwen2AudioPolicy
from audio_thinker.models.loading import load_policy

CELLS = {f"hearing {task}/{level}" for task in LISTENING_TASKS for level in DIFFICULTIES}


def test_the_shipped_audio_model_passes_its_check_on_this_machine():
    report = check_listening_model(load_policy("tiny-qwen2-audio").eval(), LISTENING_TASKS, DIFFICULTIES)
    assert set(report.scores) == CELLS | {"reasoning", "format", "answers at chance"}
    assert report.passed, report.summary()


def test_an_untrained_model_fails_it_and_the_summary_names_what_fell_short():
    tokenizer = build_tokenizer()
    policy = Qwen2AudioPolicy(build_model(tokenizer, seed=0).eval(), build_processor(tokenizer))
    report = check_listening_model(policy, LISTENING_TASKS, DIFFICULTIES, per_cell=4)
    assert not report.passed
    assert all(report.scores[cell] < HEARING_BAR for cell in CELLS)  # it says nothing a caption would
    assert f"(< {HEARING_BAR:.2f})" in report.summary()


def test_a_report_passes_only_when_every_score_reaches_its_bar():
    report = CheckReport({"a": 0.96, "b": 0.5}, {"a": 0.95, "b": 0.5})
    assert report.passed and report.failures == []
    short = CheckReport({"a": 0.94, "b": 0.5}, {"a": 0.95, "b": 0.5})
    assert short.failures == ["a"] and short.summary() == "a 0.94 (< 0.95), b 0.50"


def test_answers_are_at_chance_when_right_half_of_the_time():
    examples = held_out(("pitch_compare",), ("easy",), per_cell=4)
    right = [f"<think>x</think><answer>{ex.answer}</answer>" for ex in examples]
    wrong = [f"<think>x</think><answer>{next(c for c in ex.choices if c != ex.answer)}</answer>" for ex in examples]
    assert chance_score(examples, right) == 0.0 and chance_score(examples, wrong) == 0.0  # tied to the sound
    assert chance_score(examples, right[:2] + wrong[2:]) == 1.0
    assert chance_score(examples, right[:3] + wrong[3:]) == 0.5  # right 3 of 4: 1 - 2 * |0.75 - 0.5|
