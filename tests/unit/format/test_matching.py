"""The `choice` matcher, rule by rule, on real MMAU test-mini items (ids quoted; the items are in
tests/assets/mmau/mmau-test-mini-excerpt.json)."""

from __future__ import annotations

import pytest

from audio_thinker.format.matching import choice_correct, match_choice, match_option, strip_filler
from audio_thinker.format.words import words

# 3fe64f3d-282c-4bc8-a753-68f8f6c35652 (sound): gold "Man"
VOICE = ["Man", "Woman", "Child", "Robot"]
# b11438e7-7867-429e-9a45-b35c2642a75c (music): gold "D"; note names that are also letters
NOTES = ["G", "A#", "D", "E"]
# 7a0376a4-... (music): gold "B:maj/1"; chord symbols
CHORDS = ["F#:7/1", "B:maj/1", "E:maj/1", "D#:7/1"]
# 6b80af3a-... (music): gold "A:maj(#11)/1"
CHORDS_A = ["A:maj(#11)/1", "A:maj/5", "A:min7/1", "A:7/1"]
# b9655f21-... (speech): gold "forty-nine"; hyphenated numbers
NUMBERS = ["twenty", "ten", "forty-nine", "seventeen"]
# 2d861e76-... (speech): gold "a"; an option that is an article and a letter
STRESS = ["twenty-one", "Berman's", "said", "a"]
# e277d88f-... (music): gold "1.63 seconds", repeated as options A and D
SECONDS = ["1.63 seconds", "2.74 seconds", "1.53 seconds", "1.63 seconds"]
# dd249c7f-... (speech): gold "nine"; "fourteen" repeated
COUNTS = ["four", "nine", "fourteen", "fourteen"]
# 43df3159-... (sound): gold "No, it is not present."; sentences sharing most words
PRESENT = [
    "Yes, it is the second sound.",
    "Yes, it is the third sound.",
    "No, it is not present.",
    "Yes, it is the last sound.",
]
# 72fb5481-... (sound): gold "A woman"; options that start with an article
SPEAKER = ["A child", "A woman", "An adult man", "A teenager"]


def test_words_separate_on_punctuation_and_keep_symbols():
    assert words("twenty-one") == words("twenty one") == ("twenty", "one")
    assert words("Berman's") == ("bermans",)
    assert (words("A#"), words("F#"), words("C++"), words("5.1 surround")) == (
        ("a#",),
        ("f#",),
        ("c++",),
        ("5.1", "surround"),
    )
    assert words("A:maj(#11)/1") == ("a", "maj", "#11", "1")
    assert words("one thousand, nine hundred") == ("one", "thousand", "nine", "hundred")  # not digits: separates
    assert words("1,000 Hz") == ("1,000", "hz")
    assert words("**Answer:** (B)") == ("answer", "b") and words("### B") == ("b",)
    assert words("ＣＡＲ ＨＯＲＮ") == ("car", "horn")  # NFKC


@pytest.mark.parametrize(
    ("answer", "right"),
    [
        ("forty-nine", True),
        ("forty nine", True),
        ("Forty-Nine.", True),
        ("C", True),
        ("fortynine", False),
        ("forty", False),
        ("twenty", False),
    ],
)
def test_punctuation_separates_words(answer, right):
    assert choice_correct(answer, "forty-nine", NUMBERS) is right


@pytest.mark.parametrize(
    ("answer", "option"),
    [
        ("D", "D"),  # the option's own text, not letter D (which is "E")
        ("A#", "A#"),
        ("a#", "A#"),
        ("A", "G"),  # letter A; never option "A#" by prefix
        ("F#", None),  # no option F#
        ("F", None),  # letter F: only four options
    ],
)
def test_symbols_match_exactly_and_never_by_prefix(answer, option):
    assert match_option(answer, NOTES) == option


@pytest.mark.parametrize(
    ("answer", "option"),
    [
        ("B:maj/1", "B:maj/1"),
        ("b:maj/1", "B:maj/1"),
        ("B", "B:maj/1"),
        ("F#:7/1", "F#:7/1"),
        ("F#", None),
        ("D#:7", None),
        ("B:maj", None),
    ],
)
def test_chord_symbols(answer, option):
    assert match_option(answer, CHORDS) == option
    assert match_option("A:maj(#11)/1", CHORDS_A) == "A:maj(#11)/1" and match_option("maj/5", CHORDS_A) is None


def test_decimal_numbers_are_one_word():
    assert choice_correct("1.63 seconds", "1.63 seconds", SECONDS)
    assert not choice_correct("1.53 seconds", "1.63 seconds", SECONDS)
    assert match_option("1.6 seconds", SECONDS) is None and match_option("163 seconds", SECONDS) is None


def test_repeated_options_a_letter_for_either_copy_is_right():
    assert choice_correct("A", "1.63 seconds", SECONDS) and choice_correct("D", "1.63 seconds", SECONDS)
    assert match_choice("D", SECONDS) == 0  # the first copy's index
    assert choice_correct("B", "nine", COUNTS) and not choice_correct("C", "nine", COUNTS)
    assert not choice_correct("D", "nine", COUNTS) and match_option("fourteen", COUNTS) == "fourteen"


@pytest.mark.parametrize(
    ("answer", "option"),
    [
        ("A", "Man"),
        ("a", "Man"),
        ("(a)", "Man"),
        ("[A]", "Man"),
        ("A.", "Man"),
        ("A)", "Man"),
        ("A:", "Man"),
        ("Option A", "Man"),
        ("A. Man", "Man"),
        ("(A) man", "Man"),
        ("A, because the voice is deep", "Man"),
        ("A\nThe voice is deep.", "Man"),
        ("A. Woman", None),  # the letter names Man, the text Woman: contradictory
        ("A, B", None),  # two labels
        ("E", None),  # no fifth option
    ],
)
def test_letters(answer, option):
    assert match_option(answer, VOICE) == option


def test_a_letter_counts_only_when_the_options_were_lettered():
    assert match_option("A", VOICE, letters=False) is None
    assert match_option("(B)", VOICE, letters=False) is None
    assert match_option("Man", VOICE, letters=False) == "Man"
    assert not choice_correct("A", "Man", VOICE, letters=False) and choice_correct("A", "Man", VOICE)


@pytest.mark.parametrize(
    "answer",
    [
        "Man",
        "man.",
        "the man",
        "a man",
        "The answer is Man.",
        "Answer: man",
        "The correct answer is: A",
        "So the answer is A.",
        "I think it is a man.",
        "It's a man",
        "**Answer:** A",
        "Final answer - (A)",
        "Man, because the voice is deep.",
        "The speaker is a man.",
    ],
)
def test_filler_articles_and_sentences_name_the_option(answer):
    assert choice_correct(answer, "Man", VOICE)


@pytest.mark.parametrize("answer", ["man or woman", "A man and a woman talk.", "Woman", "B", "not sure", ""])
def test_wrong_or_naming_two_options(answer):
    assert not choice_correct(answer, "Man", VOICE)


def test_an_option_text_that_is_also_a_letter_or_an_article():
    assert match_option("a", STRESS) == "a" and match_option("A", STRESS) == "a"  # its own text, not letter A
    assert match_option("The answer is a", STRESS) == "a"
    assert match_option("D", STRESS) == "a" and match_option("twenty one", STRESS) == "twenty-one"
    assert match_option("bermans", STRESS) == "Berman's"


def test_sentences_that_differ_by_a_word():
    assert choice_correct("No, it is not present.", "No, it is not present.", PRESENT)
    assert choice_correct("C", "No, it is not present.", PRESENT)
    assert choice_correct("C. No, it is not present", "No, it is not present.", PRESENT)
    assert not choice_correct("No", "No, it is not present.", PRESENT)  # says less than the option
    assert not choice_correct("B. No, it is not present", "No, it is not present.", PRESENT)
    assert match_option("Yes, it is the third sound", PRESENT) == "Yes, it is the third sound."


def test_leading_articles_on_options():
    assert match_option("woman", SPEAKER) == "A woman" and match_option("B", SPEAKER) == "A woman"
    assert match_option("A", SPEAKER) == "A child"  # letter A: "A" alone is no option's words
    assert match_option("an adult man", SPEAKER) == "An adult man" and match_option("the teenager", SPEAKER)


def test_filler_rule():
    assert strip_filler("The answer is (B).") == "(B)."
    assert strip_filler("So the correct option is: B") == "B"
    assert strip_filler("I think that it is a dog") == "a dog"
    assert strip_filler("Answerable question") == "Answerable question"  # whole words only


def test_open_questions():
    assert choice_correct("three.", "Three", None) and choice_correct("The answer is three", "three", None)
    assert not choice_correct("3", "three", None)  # words, not numbers
    assert not choice_correct("", "", None) and not choice_correct(None, "x", None)
