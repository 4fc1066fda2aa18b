"""Reading scores and verdicts out of judge replies: on the stated scale or a parse failure, never rescaled."""

from __future__ import annotations

import pytest

from audio_thinker.rewards.judge.scores import VERDICT_GRAMMAR, parse_score, parse_verdict, score_grammar


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("7", 0.7),  # what constrained decoding produces
        ("  10  ", 1.0),
        ("0", 0.0),
        ("7.0", 0.7),  # an integral number is an integer
        ("Score: 7", 0.7),
        ("score = 7/10", 0.7),  # the stated scale as denominator
        ("**Score:** 8 out of 10", 0.8),
        ("The score is 3.", 0.3),
        ("I'd give this reasoning 6/10 overall.", 0.6),  # a fraction on the scale anywhere
        ("<think>Score: 1 at first...</think>Score: 9", 0.9),  # a reasoning judge's scratchpad is ignored
        ("Ｓｃｏｒｅ：５", 0.5),  # full-width, NFKC
    ],
)
def test_parse_score_reads_the_scale(reply, score):
    assert parse_score(reply, scale=10) == pytest.approx(score)


@pytest.mark.parametrize(
    "reply",
    [
        None,
        "",
        "lorem ipsum dolor",
        "maybe 7 tones",
        "1.5",  # not an integer: a failure, never read as 0.15
        "Score: 0.7",  # the old 0-1 format is off a 0-10 scale
        "70%",
        "Score: 85",
        "Score: 11",  # beyond the scale
        "3/5",
        "Score: 7/100",  # another scale
        "score: -1",
        "-3",
        "Score: 3/0",
        "Yes",  # a verdict is not a score
    ],
)
def test_parse_score_rejects_everything_off_the_scale(reply):
    assert parse_score(reply, scale=10) is None


def test_other_scales():
    assert parse_score("4", scale=5) == pytest.approx(0.8)
    assert parse_score("4/5", scale=5) == pytest.approx(0.8)
    assert parse_score("7", scale=5) is None and parse_score("1", scale=1) == 1.0


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("Yes", 1.0),
        ("No", 0.0),
        ("yes, the steps lead to B", 1.0),
        ("No - it argues for piano", 0.0),
        ("Verdict: no", 0.0),
        ("**Answer:** yes", 1.0),
        ("Consistent", 1.0),
        ("inconsistent", 0.0),
    ],
)
def test_parse_verdict_reads(reply, verdict):
    assert parse_verdict(reply) == verdict


@pytest.mark.parametrize("reply", [None, "", "The reasoning seems fine.", "maybe", "Score: 8", "2/10"])
def test_parse_verdict_rejects(reply):
    assert parse_verdict(reply) is None


def test_grammars_parse_every_choice():
    assert [parse_verdict(c) for c in VERDICT_GRAMMAR.choices] == [1.0, 0.0]
    assert [parse_score(c, 10) for c in score_grammar(10).choices] == pytest.approx([n / 10 for n in range(11)])
    schema = score_grammar(2).json_schema()
    assert schema["properties"]["reply"]["enum"] == ["0", "1", "2"] and schema["required"] == ["reply"]
