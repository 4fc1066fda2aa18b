"""Outcome rewards: accuracy and the two format requirements."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from audio_thinker.example import AudioQAExample
from audio_thinker.format.matching import choice_correct
from audio_thinker.rewards.outcome import AccuracyReward, FormatReward

CASES = [
    ("<think>The second tone is higher.</think><answer>B</answer>", 1.0, 1.0),
    ("<answer>B</answer>", 0.0, 1.0),
    ("<think> </think><answer>B</answer>", 0.0, 1.0),  # blank reasoning is not reasoning: CESAR pays nothing
    ("<think>x</think>B", 0.0, 0.0),
    ("<answer>A</answer><answer>B</answer>", 0.0, 0.0),
]


@pytest.mark.parametrize(("text", "think_required", "either"), CASES)
def test_format_requirements(make_inputs, violin, text, think_required, either):
    inputs = make_inputs([text], violin)
    assert FormatReward(require="think").score(inputs) == [think_required]
    assert FormatReward(require="either").score(inputs) == [either]


def test_unknown_requirement_names_the_field():
    with pytest.raises(ValueError, match="FormatReward.require"):
        FormatReward(require="strict")


def test_accuracy_uses_the_eval_choice_matcher(make_inputs):
    # MMAU test-mini b11438e7-7867-429e-9a45-b35c2642a75c: options G, A#, D, E, gold "D".
    notes = AudioQAExample(id="b11438e7", question="Which note?", answer="D", choices=["G", "A#", "D", "E"])
    texts = [
        "<answer>D</answer>",
        "<answer>C</answer>",
        "<answer>A</answer>",
        "<think>x</think><answer>So the answer is C.</think><answer>C</answer>",
        "<answer>The answer is D, it is clear.</answer>",
        "<answer>D or E</answer>",
    ]
    inputs = make_inputs(texts, notes)
    expected = [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]  # text D; letter C = "D"; letter A = "G", never "A#"; ...
    assert AccuracyReward().score(inputs) == expected
    assert AccuracyReward().score(inputs) == [
        float(choice_correct(c.answer, "D", notes.choices)) for c in inputs.completions
    ]


def test_accuracy_counts_letters_only_when_the_prompt_lettered_the_options(make_inputs, violin):
    inputs = make_inputs(["<answer>B</answer>", "<answer>violin</answer>"], violin)
    assert AccuracyReward().score(inputs) == [1.0, 1.0]
    assert AccuracyReward(letters=False).score(inputs) == [0.0, 1.0]


@pytest.mark.parametrize("suite", ["rlvr", "cesar", "audio_thinker"])
def test_reward_configs_follow_the_prompts_lettering(train_cfg, suite):
    for lettered in (True, False):
        cfg = train_cfg([f"reward={suite}", f"rollout.prompt.letter_options={str(lettered).lower()}"])
        terms = instantiate(cfg.reward).terms
        term = terms["accuracy"] if "accuracy" in terms else terms["adaptive_think_accuracy"]
        assert term.letters is lettered
