"""The reward YAMLs compose, instantiate and score a batch with hand-computed totals."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from audio_thinker.rewards.combiners import AudioThinkerCombiner, WeightedSum
from audio_thinker.rewards.judge.backends import OpenAIChatJudge, TransformersJudge

CONFIGS = str(Path(__file__).resolve().parents[3] / "configs")


def reward_config(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return compose(overrides=list(overrides)).reward


THINK = "<think>A bowed violin plays the melody, not a piano.</think><answer>B</answer>"


def test_cesar_suite_hand_computed(make_inputs, violin):
    suite = instantiate(reward_config("+reward=cesar"))
    assert list(suite.terms) == ["accuracy", "format", "consistency", "keywords", "overthinking"]
    assert isinstance(suite.combiner, WeightedSum) and suite.terms["overthinking"].l_max == 256
    result = suite(make_inputs([THINK, "<answer>B</answer>"], violin, think_lengths=[12, 0]))
    # think: 5·1 (accuracy) + 1 (format) + (1/5 + 4/6) (consistency) + 1/12 (keywords: "melody" only)
    #        + (1 - 12/256) (overthinking)
    # no-think: 5·1, format 0 (CESAR requires <think>), process terms 0
    expected = [5 + 1 + (1 / 5 + 4 / 6) + 1 / 12 + (1 - 12 / 256), 5.0]
    assert result.total.tolist() == pytest.approx(expected)


def test_cesar_weight_override_and_removal(make_inputs, violin):
    suite = instantiate(reward_config("+reward=cesar", "reward.terms.consistency.weight=0.5", "~reward.terms.keywords"))
    assert "keywords" not in suite.terms
    result = suite(make_inputs([THINK], violin, think_lengths=[12]))
    assert result.total.tolist() == pytest.approx([5 + 1 + 0.5 * (1 / 5 + 4 / 6) + (1 - 12 / 256)])


def test_audio_thinker_suite_runs_on_the_embedded_judge(make_inputs, violin, embedded_judge):
    suite = instantiate(reward_config("+reward=audio_thinker"))
    assert list(suite.terms) == ["adaptive_think_accuracy", "format", "judge_consistency", "judge_think"]
    assert isinstance(suite.combiner, AudioThinkerCombiner)
    assert isinstance(suite.terms["judge_think"].judge, TransformersJudge)
    # No thinking in the batch: no judge call. λ = 0, s/T = 0: γ_nothink = e^-1.
    result = suite(make_inputs(["<answer>B</answer>", "<answer>A</answer>"], violin, step=0, total_steps=10))
    g = math.exp(-1)
    # right: R_a = 2γ, R_c = 1, R_f = 1, R_t = fallback 0.5 (no think to average) -> 2γ·1.5 + 0.5 + 0.5
    # wrong: R_a = -γ - 2(1 - γ), R_c NaN (no bonus) -> R_a + 0.5 + 0.5
    assert result.total.tolist() == pytest.approx([3 * g + 1.0, -g - 2 * (1 - g) + 1.0])
    # With thinking, the tiny judge is asked; whatever it says, the total follows the product form.
    result = suite(make_inputs([THINK, "<answer>B</answer>"], violin, step=0, total_steps=10))
    t = {k: v[0].item() for k, v in result.terms.items()}
    assert t["format"] == 1.0 and 0.0 <= t["judge_think"] <= 1.0 and t["judge_consistency"] in (0.0, 1.0)
    expected = t["adaptive_think_accuracy"] * (1 + 0.5 * t["judge_consistency"]) + 0.5 + t["judge_think"]
    assert result.total[0].item() == pytest.approx(expected)
    metrics = suite.terms["judge_think"].metrics()
    assert set(metrics) == {"judge/failures", "judge/cache_hits"} and metrics["judge/failures"] <= 1


def test_endpoint_variant_swaps_the_backend():
    suite = instantiate(reward_config("+reward=audio_thinker_endpoint"))
    for key in ("judge_consistency", "judge_think"):
        judge = suite.terms[key].judge
        assert isinstance(judge, OpenAIChatJudge)
        assert judge.url == "http://localhost:8000/v1/chat/completions" and judge.max_new_tokens == 16
    assert isinstance(suite.combiner, AudioThinkerCombiner)
