"""Completion parsing (modes, think/answer extraction) and answer matching (letters, option text, open answers)."""

from __future__ import annotations

import pytest

from audio_thinker.data.example import AudioQAExample
from audio_thinker.rewards.parsing import is_correct, match_choice, normalize_text, parse_completion

CHOICES = ["dog barking", "car horn", "rain"]


@pytest.mark.parametrize(
    ("text", "mode", "think", "answer", "has_think_block"),
    [
        ("<think>The horn is loud.</think>\n<answer>B</answer>", "think", "The horn is loud.", "B", True),
        ("  <answer> car horn </answer>\n", "no_think", None, "car horn", False),
        # A blank think block is not reasoning: no-think, but the block was there.
        ("<think>  \n </think><answer>B</answer>", "no_think", "", "B", True),
        # Text outside the tags: malformed, the last answer is still read so accuracy stays a separate signal.
        ("Sure! <answer>A</answer>", "malformed", None, "A", False),
        ("<think>x</think><answer>A</answer> trailing", "malformed", "x", "A", True),
        ("<think>only thinking</think>", "malformed", "only thinking", None, True),
        ("<answer>A</answer><think>late</think>", "malformed", "late", "A", True),
        ("", "malformed", None, None, False),
        ("plain text answer", "malformed", None, None, False),
    ],
)
def test_parse_modes(text, mode, think, answer, has_think_block):
    parsed = parse_completion(text)
    assert (parsed.mode, parsed.think, parsed.answer, parsed.has_think_block) == (mode, think, answer, has_think_block)
    assert parsed.text == text


def test_two_answer_blocks_are_malformed():
    # A block may not contain another tag; the last answer is still read for accuracy.
    parsed = parse_completion("<answer>A</answer><answer>B</answer>")
    assert parsed.mode == "malformed" and parsed.answer == "B"
    assert parse_completion("<think>x</think><think>y</think><answer>A</answer>").mode == "malformed"


@pytest.mark.parametrize(
    ("answer", "index"),
    [
        ("B", 1),
        ("b", 1),
        ("(b)", 1),
        ("B.", 1),
        ("B)", 1),
        ("Option B", 1),
        ("B. car horn", 1),  # letter and its own text
        ("car horn", 1),
        ("Car Horn!", 1),  # case and punctuation do not matter
        ("  car\n  horn ", 1),  # nor whitespace
        ("ＣＡＲ ＨＯＲＮ", 1),  # full-width text folds under NFKC
        ("rain", 2),
        ("B. rain", None),  # the letter names "car horn", the text names "rain": contradictory
        ("D", None),  # no fourth option
        ("a cat meowing", None),  # not an option
        ("", None),
        ("...", None),  # punctuation only normalises to empty
    ],
)
def test_match_choice(answer, index):
    assert match_choice(answer, CHOICES) == index


def test_normalize_text():
    assert normalize_text("  Car,  HORN!\n") == "car horn"
    assert normalize_text("Ｃａｆé") == "café"  # NFKC folds full width; accents are letters, kept


def test_is_correct_multiple_choice_and_open():
    mc = AudioQAExample(id="mc", question="What is heard?", answer="car horn", choices=CHOICES)
    assert is_correct("B", mc) and is_correct("car horn.", mc)
    assert not is_correct("A", mc) and not is_correct("truck", mc) and not is_correct(None, mc)
    open_q = AudioQAExample(id="open", question="How many beeps?", answer="Three")
    assert is_correct("three.", open_q)
    assert not is_correct("3", open_q)  # open answers: normalised exact match only
    assert not is_correct("", AudioQAExample(id="empty", question="?", answer=""))  # empty never matches
