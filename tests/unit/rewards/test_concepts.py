"""Concept extraction for CESAR consistency: tokens, stop words, the suffix-folding stemmer, overlap."""

from __future__ import annotations

import pytest

from audio_thinker.rewards.concepts import (
    concepts,
    content_tokens,
    load_stopwords,
    order_agrees,
    overlap,
    sequence_parts,
    stem,
    tokenize,
)


@pytest.mark.parametrize(
    ("words", "folded"),
    [
        (["higher", "highest", "high"], "high"),  # "er"/"est" stripped, stem "high" keeps >= 3 letters
        (["pitches", "pitch"], "pitch"),  # "s" -> "pitche", then the final "e" goes
        (["frequencies", "frequency"], "frequency"),  # "ies" -> "y"
        (["louder", "loudly", "loudness", "loud"], "loud"),
        (["humming", "hummed", "hum"], "hum"),  # "ing"/"ed" -> "humm", undoubled -> "hum"
        (["tones", "tone"], "ton"),  # final "e" dropped in both
        (["rising", "rises", "rise"], "ris"),
        (["happily", "happier", "happiest"], "happy"),  # "ily"/"ier"/"iest" -> "y"
        (["speakers", "speaker"], "speak"),  # "s" then "er", repeated until nothing applies
        (["goes", "go"], "go"),  # "s" -> "goe", then the final "e" after "o" goes too (Snowball stops at "goe")
        (["toes", "toe"], "to"),
        (["shoes", "shoe"], "sho"),
    ],
)
def test_stem_folds_inflections_together(words, folded):
    assert {stem(w) for w in words} == {folded}


@pytest.mark.parametrize(
    ("word", "folded"),
    [
        ("bass", "bas"),  # "s" after "s" is kept, then "ss" is undoubled
        ("chorus", "chorus"),  # "s" after "u" is kept
        ("analysis", "analysis"),  # "s" after "i" is kept
        ("sing", "sing"),  # "ing" would leave one letter (< 3)
        ("bee", "bee"),  # 3 letters: no final-e drop, no undoubling
        ("2nd", "2nd"),  # not purely alphabetic: untouched
        ("150", "150"),
    ],
)
def test_stem_leaves_short_and_protected_words(word, folded):
    assert stem(word) == folded


def test_tokenize_unicode_and_separators():
    # NFKC: full width -> ASCII, the "ﬁ" ligature -> "fi"; apostrophes and underscores separate tokens.
    assert tokenize("Ｐｉｔｃｈ ﬁlter don't 2 beeps_x Café") == [
        "pitch",
        "filter",
        "don",
        "t",
        "2",
        "beeps",
        "x",
        "café",
    ]


def test_concepts_drop_stop_words_and_letters_keep_digits():
    stopwords = load_stopwords()
    # the/option/has: stop words; "B": one letter; "2" kept; rising -> ris; tones -> ton
    assert concepts("The B option has 2 rising tones", stopwords) == {"2", "ris", "ton"}
    assert concepts(None, stopwords) == set() and concepts("", stopwords) == set()
    assert concepts("the of and", stopwords) == set()


def test_overlap_definition():
    assert overlap({"a", "b", "c"}, {"b", "c"}) == pytest.approx(2 / 3)  # |∩| = 2, max size 3
    assert overlap({"a"}, {"a"}) == 1.0
    assert overlap(set(), set()) == 0.0  # both empty: 0 by definition, not a division by zero
    assert overlap(set(), {"a"}) == 0.0


def test_custom_stopwords_file(tmp_path):
    path = tmp_path / "stop.yaml"
    path.write_text('words: ["violin", "Don\'t"]\n')
    stopwords = load_stopwords(str(path))
    assert stopwords == {"violin", "don", "t"}  # entries are tokenised like text
    assert concepts("violin melody", stopwords) == {"melody"}


def test_bad_stopwords_file_says_what_to_do(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("words: [yes, no]\n")  # unquoted: YAML reads booleans
    with pytest.raises(ValueError, match="quoted strings"):
        load_stopwords(str(path))


def test_decisive_words_are_not_stop_words():
    stopwords = load_stopwords()
    for word in ("yes", "no", "one", "same", "more", "up", "down", "then", "on", "off", "above", "below", "in", "out"):
        assert word not in stopwords, word
    assert concepts("Yes, one more goes up", stopwords) == {"yes", "1", "mor", "go", "up"}  # "one" -> "1"


def test_sequence_parts_and_order():
    stopwords = load_stopwords()
    assert sequence_parts("up then down", stopwords) == [["up"], ["down"]]
    assert sequence_parts("A beep followed by two clicks", stopwords) == [["beep"], ["2", "click"]]
    assert sequence_parts("rising", stopwords) == [["ris"]]  # one part: not a sequence
    think = content_tokens("It starts low, goes up and then comes down", stopwords)
    assert order_agrees(think, [["up"], ["down"]]) and not order_agrees(think, [["down"], ["up"]])
    assert order_agrees(think, [["click"], ["down"]])  # a part the think never names is no evidence
