"""Prompt templates: the chat message layout, the three modes, the YAML configs and answer-invariant rephrasing."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from audio_thinker.data.synthetic import TASKS, make_example
from audio_thinker.example import AudioQAExample
from audio_thinker.format.parsing import parse_completion
from audio_thinker.format.prompts import (
    ADAPTIVE,
    DIRECT,
    SYNONYM_GROUPS,
    TEMPLATES,
    THINK,
    PromptTemplate,
    rephrase_question,
    rephrasings,
)
from tests.helpers.configs import CONFIGS

EXAMPLE = AudioQAExample(
    "ex-1",
    "Which of the two tones is higher in pitch?",
    "the second tone",
    choices=["the first tone", "the second tone"],
)


def test_messages_with_audio_follow_the_hf_multimodal_layout():
    template = PromptTemplate(instruction="Answer in <answer></answer>.", mode="direct", system="You listen well.")
    assert template.messages(EXAMPLE) == [
        {"role": "system", "content": "You listen well."},
        {
            "role": "user",
            "content": [
                {"type": "audio", "audio": EXAMPLE.id},  # a key the hub Qwen2-Audio template looks for
                {
                    "type": "text",
                    "text": "Which of the two tones is higher in pitch?\nA. the first tone\nB. the second "
                    "tone\nAnswer in <answer></answer>.",
                },
            ],
        },
    ]


def test_without_audio_the_user_turn_is_a_string_and_no_system_means_none():
    messages = THINK.messages(EXAMPLE, with_audio=False)
    assert [m["role"] for m in messages] == ["user"]
    assert messages[0]["content"] == THINK.user_text(EXAMPLE)
    assert messages[0]["content"].endswith(THINK.instruction)


def test_open_questions_have_no_options_block():
    open_question = AudioQAExample("o", "What word is spoken?", "hello")
    assert DIRECT.user_text(open_question) == f"What word is spoken?\n{DIRECT.instruction}"


def test_the_three_templates_ask_for_the_formats_the_parser_reads():
    assert (THINK.mode, ADAPTIVE.mode, DIRECT.mode) == ("think", "adaptive", "direct")
    for template in TEMPLATES.values():
        assert "<answer>" in template.instruction and "</answer>" in template.instruction
    assert "<think>" in THINK.instruction and "<think>" in ADAPTIVE.instruction and "<think>" not in DIRECT.instruction
    # The replies each instruction asks for parse into the mode the reward functions expect.
    assert parse_completion("<think>higher second</think><answer>B</answer>").mode == "think"
    assert parse_completion("<answer>B</answer>").mode == "no_think"
    with pytest.raises(ValueError, match="prompt mode must be one of"):
        PromptTemplate(instruction="x", mode="chatty")


@pytest.mark.parametrize("name", ["think", "adaptive", "direct"])
def test_yaml_configs_build_the_module_templates(name):
    node = OmegaConf.load(CONFIGS / "prompt" / f"{name}.yaml")
    assert (CONFIGS / "prompt" / f"{name}.yaml").read_text().startswith("# @package rollout.prompt\n")
    template = instantiate(OmegaConf.create({"seed": 0, "prompt": node}).prompt)
    assert template == TEMPLATES[name]  # the YAML and the Python constants cannot drift apart


def test_rephrasing_is_deterministic_varied_and_never_touches_options_or_answer():
    template = PromptTemplate(rephrase=True, seed=3)
    examples = [AudioQAExample(f"id-{i}", EXAMPLE.question, EXAMPLE.answer, list(EXAMPLE.choices)) for i in range(30)]
    asked = [template.question(e) for e in examples]
    assert asked == [template.question(e) for e in examples]  # same (seed, id) -> same wording
    assert set(asked) == set(rephrasings(EXAMPLE.question)) and len(set(asked)) == 3  # all wordings get used
    assert [PromptTemplate(rephrase=True, seed=4).question(e) for e in examples] != asked  # the seed matters
    for example in examples:
        text = template.user_text(example)
        assert text.endswith("\nA. the first tone\nB. the second tone\n" + template.instruction)
        assert (example.answer, example.answer_letter) == ("the second tone", "B")  # example untouched
    assert PromptTemplate(seed=3).question(examples[0]) == EXAMPLE.question  # off by default


def test_every_synthetic_question_has_synonyms_within_one_group():
    grouped = {q for group in SYNONYM_GROUPS for q in group}
    for task in TASKS:
        question = make_example(0, 0, task, "easy").question
        assert question in grouped, task
        assert len(rephrasings(question)) >= 3
    assert len(grouped) == sum(len(g) for g in SYNONYM_GROUPS)  # no wording belongs to two groups


def test_unknown_questions_get_a_lead_in_around_the_unchanged_question():
    question = "What instrument is playing in the recording?"
    options = rephrasings(question)
    assert options[0] == question and len(options) == 4
    assert all(question[1:] in option for option in options)  # only the first letter's case may change
    assert "Based on what you hear, what instrument is playing in the recording?" in options
    assert "Based on what you hear, Mozart wrote which piece?" in rephrasings("Mozart wrote which piece?")  # a name
    assert rephrase_question(question, 0, "k") == rephrase_question(question, 0, "k")


def test_options_are_lettered_unless_asked_not_to():
    assert THINK.user_text(EXAMPLE).splitlines()[1:3] == ["A. the first tone", "B. the second tone"]
    plain = PromptTemplate(letter_options=False)
    assert plain.user_text(EXAMPLE).splitlines()[1:3] == ["- the first tone", "- the second tone"]
    for name in ("think", "adaptive", "direct"):
        assert OmegaConf.load(CONFIGS / "prompt" / f"{name}.yaml").letter_options is True
