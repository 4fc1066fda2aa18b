"""The `mmau` scorer against an independent re-implementation of MMAU's published rule, on real items."""

from __future__ import annotations

import pytest

from audio_thinker.data.manifest_formats import read_records
from audio_thinker.eval.official import official_items
from audio_thinker.format.matching import choice_correct
from audio_thinker.format.mmau import mmau_correct, official_output
from tests.helpers.benchmarks import EXCERPT, full_mmau_test_mini, official_rule

VOICE = ["Man", "Woman", "Child", "Robot"]  # 3fe64f3d-282c-4bc8-a753-68f8f6c35652, gold "Man"
NOTES = ["G", "A#", "D", "E"]  # b11438e7-7867-429e-9a45-b35c2642a75c, gold "D"
# bbabe360-0573-43d4-b2e6-6892150cbdcd: every option uses the same four words in another order
ORDER = [
    "['light_switch_clicking', 'boiling_water', 'doorbell_ringing', 'clock_ticking']",
    "['boiling_water', 'light_switch_clicking', 'clock_ticking', 'doorbell_ringing']",
    "['clock_ticking', 'doorbell_ringing', 'boiling_water', 'light_switch_clicking']",
    "['doorbell_ringing', 'clock_ticking', 'light_switch_clicking', 'boiling_water']",
]


def prediction_strings(choices: list[str], gold: str) -> list[str]:
    """Answers of the shapes models write: letters in several forms, option texts, sentences, two options."""
    out = []
    for index, choice in enumerate(choices):
        letter = "ABCDEFGH"[index]
        out += [
            letter,
            f"({letter.lower()})",
            f"Option {letter}",
            f"The answer is {letter}.",
            f"{letter}. {choice}",
            choice,
            choice.upper(),
            f"The answer is {choice}.",
            f"{choice}, because that is what I hear.",
            f"the {choice}",
        ]
    out += [f"{choices[0]} or {choices[1]}", "", "I am not sure.", gold.replace("-", " "), gold.rstrip(".") + "!"]
    return out


def graded(path) -> list[tuple[dict, str]]:
    """(official entry, the answer it came from) for every prediction string of every item in `path`."""
    examples = [r.example for r in read_records(path)]
    items = {ex.id: (ex.meta["record"], ex.choices) for ex in examples}
    predictions = [
        {"id": ex.id, "answer": answer} for ex in examples for answer in prediction_strings(ex.choices, ex.answer)
    ]
    return list(zip(official_items(predictions, items), [p["answer"] for p in predictions], strict=True))


def test_mmau_scorer_agrees_with_the_official_rule_on_real_items():
    entries = graded(EXCERPT)
    assert len(entries) >= 200 and len({answer for _, answer in entries}) >= 200
    verdicts = [official_rule(entry) for entry, _ in entries]
    ours = [mmau_correct(answer, entry["answer"], [c.strip() for c in entry["choices"]]) for entry, answer in entries]
    assert ours == verdicts
    assert 0.1 < sum(verdicts) / len(verdicts) < 0.9  # both outcomes are well represented


def test_mmau_scorer_agrees_with_the_official_rule_on_the_full_test_mini():
    entries = graded(full_mmau_test_mini())
    assert len({entry["id"] for entry, _ in entries}) == 1000
    ours = [mmau_correct(answer, entry["answer"], [c.strip() for c in entry["choices"]]) for entry, answer in entries]
    assert ours == [official_rule(entry) for entry, _ in entries]


@pytest.mark.parametrize(
    ("answer", "output"),
    [
        ("A", "Man"),
        ("(b)", "Woman"),
        ("Option C", "Child"),
        ("The answer is D.", "Robot"),
        ("**A**", "Man"),
        ("A. Man", "A. Man"),
        ("Man, surely", "Man, surely"),
        ("F", "F"),
        (None, ""),
        ("", ""),
    ],
)
def test_bare_letters_become_their_option_text(answer, output):
    assert official_output(answer, VOICE) == output


def test_letters_unmapped_without_lettered_options_and_option_texts_that_look_like_letters():
    assert official_output("A", VOICE, letters=False) == "A"
    assert official_output("D", NOTES) == "D"  # option D's text is "E", but "D" is an option's own text
    assert official_output("A", NOTES) == "G" and not mmau_correct("A", "D", NOTES)
    assert mmau_correct("D", "D", NOTES) and mmau_correct("C", "D", NOTES)


def test_where_the_official_rule_and_the_choice_matcher_differ():
    # MMAU's tokens drop symbols: "F" is graded right for gold "F#", and so is "F#" for gold "F".
    notes = ["F#", "G", "A", "B"]
    assert mmau_correct("F", "F#", notes) and not choice_correct("F", "F#", notes)
    # Options with the same words in another order cannot be told apart by it: any of them is right.
    assert mmau_correct("B", ORDER[0], ORDER) and not choice_correct("B", ORDER[0], ORDER)
    # Both credit sentences naming the gold option, and neither credits an answer naming two options.
    for scorer in (mmau_correct, choice_correct):
        assert scorer("The answer is Man, because the voice is deep.", "Man", VOICE)
        assert not scorer("Man or Woman", "Man", VOICE)
