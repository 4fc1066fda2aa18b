"""CESAR consistency: Sim(t, ŷ) + Sim(t, Q), hand-computed.

For the `violin` fixture, C(Q) = {instrument, play, melody, piano, violin, drum} (6 concepts:
"which"/"the" are stop words, plays -> play, drums -> drum).
"""

from __future__ import annotations

import pytest

from audio_thinker.example import AudioQAExample
from audio_thinker.rewards.consistency import ConsistencyReward, answer_text

THINK = "<think>A bowed violin plays the melody, not a piano.</think>"
# C(t) = {bow, violin, play, melody, piano}: 5 concepts ("a", "the", "not" are stop words, bowed -> bow).
# Sim(t, Q) = |{violin, play, melody, piano}| / max(5, 6) = 4/6.


def test_letter_and_text_answers_score_the_same(make_inputs, violin):
    inputs = make_inputs([THINK + "<answer>B</answer>", THINK + "<answer>violin</answer>"], violin)
    # ŷ = "violin" either way: Sim(t, ŷ) = 1 / max(5, 1) = 1/5
    assert ConsistencyReward().score(inputs) == pytest.approx([1 / 5 + 4 / 6] * 2)


def test_answer_not_among_options_uses_its_own_words(make_inputs, violin):
    inputs = make_inputs(["<think>I hear a flute melody.</think><answer>flute</answer>"], violin)
    # C(t) = {hear, flut, melody}; C(ŷ) = {flut}: 1/3; C(t) ∩ C(Q) = {melody}: 1 / max(3, 6) = 1/6
    assert ConsistencyReward().score(inputs) == pytest.approx([1 / 3 + 1 / 6])


def test_empty_answer_contributes_nothing(make_inputs, violin):
    inputs = make_inputs([THINK + "<answer></answer>"], violin)
    assert inputs.completions[0].mode == "think"
    assert ConsistencyReward().score(inputs) == pytest.approx([0 + 4 / 6])


@pytest.mark.parametrize(
    "text",
    [
        "<answer>B</answer>",  # no think block
        "<think> </think><answer>B</answer>",  # blank think
        "<think>violin melody</think> so <answer>B</answer>",  # malformed: text between the tags
        "violin melody piano",  # malformed: no tags at all
    ],
)
def test_no_valid_reasoning_scores_zero(make_inputs, violin, text):
    assert ConsistencyReward().score(make_inputs([text], violin)) == [0.0]


def test_unicode_reasoning(make_inputs, violin):
    inputs = make_inputs(["<think>Ｔｈｅ ＶＩＯＬＩＮ ｐｌａｙｓ.</think><answer>B</answer>"], violin)
    # NFKC + lower: C(t) = {violin, play}; Sim(t, ŷ) = 1/2; Sim(t, Q) = 2/6
    assert ConsistencyReward().score(inputs) == pytest.approx([1 / 2 + 2 / 6])


def test_open_question(make_inputs):
    beeps = AudioQAExample(id="beeps", question="How many beeps are there?", answer="3")
    inputs = make_inputs(["<think>I count 3 beeps.</think><answer>3</answer>"], beeps)
    # C(t) = {count, 3, beep}; C(ŷ) = {3}: 1/3; C(Q) = {beep}: 1/3
    assert ConsistencyReward().score(inputs) == pytest.approx([2 / 3])


def test_answer_text_expansion(violin):
    assert answer_text("(b)", violin) == "violin"
    assert answer_text("Option C", violin) == "drums"
    assert answer_text("E", violin) == "E"  # no fifth option: kept as written
    assert answer_text(None, violin) == "" and answer_text("", violin) == ""


def test_custom_stopwords_change_the_score(make_inputs, violin, tmp_path):
    path = tmp_path / "stop.yaml"
    path.write_text('words: ["a", "the", "not", "which", "melody"]\n')
    inputs = make_inputs([THINK + "<answer>B</answer>"], violin)
    # "melody" now a stop word: C(t) = {bow, violin, play, piano}, C(Q) = {instrument, play, piano, violin, drum}
    # Sim(t, ŷ) = 1/4, Sim(t, Q) = 3/5
    assert ConsistencyReward(stopwords_path=str(path)).score(inputs) == pytest.approx([1 / 4 + 3 / 5])


# The synthetic melody_contour task (audio_thinker.data.synthetic.CONTOURS): question "How does the pitch move across
# the three tones?", options "rising", "falling", "up then down", "down then up".
# C(Q) = {pitch, mov, 3, ton, ris, fal, up, then, down}: 9 concepts ("three" -> "3"; up/then/down are not stop words).
CONTOUR = AudioQAExample(
    id="contour",
    question="How does the pitch move across the three tones?",
    answer="up then down",
    choices=["rising", "up then down", "falling", "down then up"],
)
UP_DOWN = "<think>The pitch goes up then down.</think>"  # C(t) = {pitch, go, up, then, down}; Sim(t, Q) = 4/9


def test_direction_words_decide_the_contour_answer(make_inputs):
    inputs = make_inputs([UP_DOWN + "<answer>B</answer>", UP_DOWN + "<answer>D</answer>"], CONTOUR)
    # B = "up then down": {up, then, down} ⊂ C(t), in the same order: 3/5 + 4/9.
    # D = "down then up": the same three concepts, but the think says them in the other order: 0 + 4/9.
    # (With up/then/down as stop words both scored 0 + 1/6: the term could not tell them apart.)
    assert ConsistencyReward().score(inputs) == pytest.approx([3 / 5 + 4 / 9, 4 / 9])


def test_order_rule_only_for_sequence_answers(make_inputs, violin):
    # pitch_compare's options "the first tone" / "the second tone" are no sequence: word order is free.
    pair = AudioQAExample(
        id="pair",
        question="Which of the two tones is higher in pitch?",
        answer="the second tone",
        choices=["the first tone", "the second tone"],
    )
    inputs = make_inputs(["<think>The tone that came second is higher.</think><answer>B</answer>"], pair)
    # C(t) = {ton, cam, second, high}; C(ŷ) = {second, ton}: 2/4 although "second" comes after "tone";
    # C(Q) = {2, ton, high, in, pitch, first, second} ("two" -> "2", "in" kept): {ton, second, high} = 3/7
    assert ConsistencyReward().score(inputs) == pytest.approx([2 / 4 + 3 / 7])


def test_number_words_meet_digit_answers(make_inputs):
    # count_beeps: "How many beeps do you hear?" with digit options; reasoning often spells the number.
    beeps = AudioQAExample(id="b", question="How many beeps do you hear?", answer="3", choices=["2", "3", "5", "8"])
    inputs = make_inputs(["<think>I hear three short beeps.</think><answer>3</answer>"], beeps)
    # C(t) = {hear, 3, short, beep}; C(ŷ) = {3}: 1/4; C(Q) = {many, beep, hear, 2, 3, 5, 8}: {hear, 3, beep} = 3/7
    assert ConsistencyReward().score(inputs) == pytest.approx([1 / 4 + 3 / 7])
