"""Option lettering."""

from __future__ import annotations

import pytest

from audio_thinker.format.options import is_option_letter, letter_index, lettered_options, option_letter, options_block
from audio_thinker.format.parsing import parse_completion
from audio_thinker.format.tags import completion_text


def test_letters_round_trip_and_blocks():
    assert [option_letter(i) for i in range(3)] == ["A", "B", "C"]
    assert letter_index("b") == letter_index("B") == 1
    assert options_block(["Man", "Woman"]) == "A. Man\nB. Woman"
    assert options_block(["Man", "Woman"], lettered=False) == "- Man\n- Woman"
    assert lettered_options(["Man", "Woman"]) == ["A. Man", "B. Woman"]


@pytest.mark.parametrize("bad", ["", "AB", "1", "é", "ﬆ"])  # "ﬆ".upper() == "ST"
def test_not_a_letter(bad):
    assert not is_option_letter(bad)
    with pytest.raises(ValueError, match="not an option letter"):
        letter_index(bad)


def test_more_options_than_letters():
    with pytest.raises(ValueError, match="at most 26"):
        option_letter(26)


def test_completions_are_written_with_the_tags_they_are_parsed_by():
    assert completion_text("B", think="It rises.") == "<think>It rises.</think><answer>B</answer>"
    assert completion_text("B") == "<answer>B</answer>"
    assert completion_text("B", think="") == "<think></think><answer>B</answer>"
    assert [parse_completion(completion_text("B", t)).mode for t in ("It rises.", None, "")] == [
        "think",
        "no_think",
        "no_think",
    ]
