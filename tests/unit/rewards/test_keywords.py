"""CESAR keywords: saturating components over the packaged lexicon (caps 3/3/4, max 1/3 each), hand-computed."""

from __future__ import annotations

import pytest

from audio_thinker.rewards.keywords import KeywordReward, compile_entry, load_lexicon


@pytest.fixture(scope="module")
def reward() -> KeywordReward:
    return KeywordReward()


def test_packaged_lexicon_shape():
    components = {c.name: c for c in load_lexicon()}
    assert {name: (c.cap, c.max) for name, c in components.items()} == {
        "pattern": (3, pytest.approx(1 / 3)),
        "logic": (3, pytest.approx(1 / 3)),
        "domain": (4, pytest.approx(1 / 3)),
    }


def test_breakdown_hand_computed(reward):
    parts = reward.breakdown("First I compare the pitch and the tempo. Because the tempo is faster, B fits.")
    # pattern {first, compare}: 2/3 · 1/3; logic {because}: 1/3 · 1/3; domain {pitch, tempo}: 2/4 · 1/3
    assert parts == pytest.approx({"pattern": 2 / 9, "logic": 1 / 9, "domain": 1 / 6, "total": 1 / 2})


def test_stuffing_is_capped(reward):
    stuffed = (
        "first then next finally because therefore thus hence so since "
        "pitch frequency tempo timbre amplitude prosody formant"
    )
    # pattern 4 entries > cap 3, logic 6 > 3, domain 7 > 4: every component saturates at 1/3
    assert reward.breakdown(stuffed) == pytest.approx({"pattern": 1 / 3, "logic": 1 / 3, "domain": 1 / 3, "total": 1})
    assert reward.breakdown(stuffed * 20)["total"] == pytest.approx(1.0)  # twenty times the words: not a cent more


def test_repeating_one_entry_counts_once(reward):
    assert reward.breakdown("pitch pitch pitch pitch")["total"] == pytest.approx(1 / 12)  # 1/4 · 1/3


def test_whole_words_only(reward):
    # "keynote" is not "key", "pitchfork" is not "pitch", "sofa" is not "so"
    assert reward.breakdown("The keynote speech was a pitchfork sofa")["total"] == 0.0


def test_if_then_gap_stays_inside_a_sentence(reward):
    within = reward.breakdown("If the pitch rises then the answer is B.")
    # logic {if … then}: 1/9; its "then" is taken, so pattern {then} does not count it again; domain {pitch}: 1/12
    assert within == pytest.approx({"pattern": 0.0, "logic": 1 / 9, "domain": 1 / 12, "total": 1 / 9 + 1 / 12})
    across = reward.breakdown("If it rises. Then B.")
    assert across["logic"] == 0.0 and across["pattern"] == pytest.approx(1 / 9)  # "then" alone is still a pattern


def test_multiword_phrases_any_whitespace_and_case(reward):
    # "chord progression" is the longest match; its "chord" is not counted again: 1/4 · 1/3
    assert reward.breakdown("The CHORD\n  progression")["domain"] == pytest.approx(1 / 12)
    # A separate "chord" elsewhere is a second entry: 2/4 · 1/3
    assert reward.breakdown("A minor chord. The chord progression")["domain"] == pytest.approx(3 / 12)


def test_unicode_full_width(reward):
    assert reward.breakdown("ＰＩＴＣＨ")["domain"] == pytest.approx(1 / 12)


def test_only_think_mode_scores(make_inputs, violin, reward):
    inputs = make_inputs(
        [
            "<think>pitch</think><answer>B</answer>",
            "<answer>because pitch</answer>",  # the answer is not reasoning
            "<think>because pitch</think> x <answer>B</answer>",  # malformed
            "<think> </think><answer>B</answer>",  # blank think
        ],
        violin,
    )
    assert reward.score(inputs) == pytest.approx([1 / 12, 0.0, 0.0, 0.0])


def test_custom_lexicon(tmp_path, make_inputs, violin):
    path = tmp_path / "lexicon.yaml"
    path.write_text('cues: {cap: 2, terms: ["loud", "soft", "quiet"]}\nbonus: {cap: 1, max: 2.0, terms: ["violin"]}\n')
    reward = KeywordReward(lexicon_path=str(path))
    # cues: max defaults to 1/2 (two components); "loud": 1/2 · 1/2; bonus: 2 · 1/1
    assert reward.breakdown("loud violin") == pytest.approx({"cues": 1 / 4, "bonus": 2.0, "total": 2.25})
    assert reward.breakdown("loud soft quiet")["cues"] == pytest.approx(1 / 2)  # 3 > cap 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cues: {cap: 0, terms: [loud]}", "cap"),
        ("cues: {cap: 2, terms: []}", "terms"),
        ("[loud, soft]", "component"),
        ('cues: {cap: 1, terms: [{term: "bass", near: "guitar"}]}', "near"),
        ("cues: {cap: 1, terms: [{word: bass}]}", "entry must be"),
    ],
)
def test_bad_lexicon_says_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_lexicon(str(path))


def test_compile_entry_gap_and_punctuation():
    assert compile_entry("option … is unlikely").search("option a is unlikely because")
    assert compile_entry("option ... is unlikely").search("option c, which sounds dull, is unlikely")
    assert not compile_entry("option … is unlikely").search("option a. it is unlikely")  # gap stops at "."


def test_overlapping_pattern_entries_count_once(reward):
    # "option … does not" and "does not match" share "does not": the longer match wins, one entry, 1/3 · 1/3
    assert reward.breakdown("Option A does not match the sound.")["pattern"] == pytest.approx(1 / 9)


def test_option_ordinals_of_the_two_tone_tasks_are_not_patterns(reward):
    # pitch/loudness/duration_compare options are "the first tone" and "the second tone": naming them is no
    # analytical move; a clause-initial "First," / "Second," is.
    assert reward.breakdown("The second tone is higher than the first tone.")["pattern"] == 0.0
    assert reward.breakdown("First, the second tone is higher. Second, it is louder.")["pattern"] == pytest.approx(
        2 / 9
    )


def test_everyday_senses_pay_nothing(reward):
    # "so" as an intensifier, "key"/"minor" without music words around them
    assert reward.breakdown("The key point is a minor difference, it is so loud.")["total"] == 0.0
    # a clause-initial "so"; "minor key" next to each other (domain {melody, minor, key}: 3/4 · 1/3)
    assert reward.breakdown("The melody is in a minor key, so B.") == pytest.approx(
        {"pattern": 0.0, "logic": 1 / 9, "domain": 1 / 4, "total": 1 / 9 + 1 / 4}
    )


def test_sense_entries_in_a_custom_lexicon(tmp_path):
    path = tmp_path / "lexicon.yaml"
    path.write_text('cues: {cap: 2, terms: [{term: "bass", near: ["guitar"]}, {term: "now", start: true}]}\n')
    reward = KeywordReward(lexicon_path=str(path))
    assert reward.breakdown("a bass guitar. Now it stops")["cues"] == pytest.approx(1.0)
    assert reward.breakdown("a bass fish, it stops now")["cues"] == 0.0
