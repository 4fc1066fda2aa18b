"""Option lettering."""

from __future__ import annotations

import pytest

from audio_thinker.format.options import letter_index, option_letter, options_block


def test_letters_round_trip_and_blocks():
    assert [option_letter(i) for i in range(3)] == ["A", "B", "C"]
    assert letter_index("b") == letter_index("B") == 1
    assert options_block(["Man", "Woman"]) == "A. Man\nB. Woman"
    assert options_block(["Man", "Woman"], lettered=False) == "- Man\n- Woman"


@pytest.mark.parametrize("bad", ["", "AB", "1", "é"])
def test_not_a_letter(bad):
    with pytest.raises(ValueError, match="not an option letter"):
        letter_index(bad)


def test_more_options_than_letters():
    with pytest.raises(ValueError, match="at most 26"):
        option_letter(26)
