"""Completion parsing: modes, and which think/answer text is read (the last complete answer block)."""

from __future__ import annotations

import pytest

from audio_thinker.format.parsing import parse_completion


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
        # An answer block never closed is no answer.
        ("<think>x</think><answer>C", "malformed", "x", None, True),
    ],
)
def test_parse_modes(text, mode, think, answer, has_think_block):
    parsed = parse_completion(text)
    assert (parsed.mode, parsed.think, parsed.answer, parsed.has_think_block) == (mode, think, answer, has_think_block)
    assert parsed.text == text


def test_budget_forcing_rewritten_tags_the_last_complete_answer_wins():
    # Budget forcing appends `</think><answer>` and models write the closing tags again (5 of 50 completions in
    # a real run): the answer is the last complete block, not the text between the first <answer> and </answer>.
    text = "<think>The voice is deep.</think><answer>So the answer is C.</think><answer>C</answer>"
    parsed = parse_completion(text)
    assert (parsed.answer, parsed.think, parsed.mode) == ("C", "The voice is deep.", "malformed")


def test_two_answer_blocks_are_malformed_and_the_last_is_read():
    # A block may not contain another tag.
    parsed = parse_completion("<answer>A</answer><answer>B</answer>")
    assert parsed.mode == "malformed" and parsed.answer == "B"
    assert parse_completion("<think>x</think><think>y</think><answer>A</answer>").mode == "malformed"
    assert parse_completion("<answer>A <answer>B</answer>").answer == "B"  # an unclosed block is skipped
