"""Reading scores and verdicts out of free-text judge replies."""

from __future__ import annotations

import pytest

from audio_thinker.rewards.judge.scores import parse_score, parse_verdict


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("Score: 0.7", 0.7),
        ("score = 7/10", 0.7),  # a denominator divides
        ("**Score:** 8 out of 10", 0.8),
        ("Rating: 70%", 0.7),  # % divides by 100
        ("Score: 7", 0.7),  # bare number in (1, 10]: out of 10
        ("Score: 85", 0.85),  # in (10, 100]: a percentage
        ("score 0,6", 0.6),  # decimal comma
        ("I'd give this reasoning 3/5 overall.", 0.6),  # a fraction anywhere
        ("0.7", 0.7),
        ("  1  ", 1.0),
        ("Yes", 1.0),
        ("no.", 0.0),
        ("<think>Score: 0.1 at first...</think>Score: 0.9", 0.9),  # a reasoning judge's scratchpad is ignored
        ("Ｓｃｏｒｅ：０.５", 0.5),  # full-width, NFKC
    ],
)
def test_parse_score_reads(reply, score):
    assert parse_score(reply) == pytest.approx(score)


@pytest.mark.parametrize(
    "reply",
    [None, "", "lorem ipsum dolor", "Score: 250", "Score: 1.5/1", "score: -1", "-0.5", "maybe 7 tones", "Score: 3/0"],
)
def test_parse_score_rejects(reply):
    assert parse_score(reply) is None


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("Yes.", 1.0),
        ("yes, the steps lead to B", 1.0),
        ("No - it argues for piano", 0.0),
        ("Verdict: no", 0.0),
        ("**Answer:** yes", 1.0),
        ("Consistent", 1.0),
        ("inconsistent", 0.0),
        ("Score: 0.8", 1.0),  # a score is thresholded at 0.5
        ("2/10", 0.0),
    ],
)
def test_parse_verdict_reads(reply, verdict):
    assert parse_verdict(reply) == verdict


@pytest.mark.parametrize("reply", [None, "", "The reasoning seems fine.", "maybe"])
def test_parse_verdict_rejects(reply):
    assert parse_verdict(reply) is None
