"""Reward functions in TRL's and ms-SWIFT's shapes as terms: what they receive, None as n/a, errors naming them, and
modules imported from the directory the user runs in or from `reward.paths`.

The functions below follow the shapes the two libraries document (TRL: `f(completions, **kwargs)` with dataset
columns as keyword arguments and message lists for conversational data; ms-SWIFT: an ORM class whose instances are
called with completion texts and the columns); the code is ours."""

from __future__ import annotations

import math
import sys
import textwrap

import pytest
from omegaconf import OmegaConf

from audio_thinker.example import AudioQAExample
from audio_thinker.format.parsing import parse_completion
from audio_thinker.rewards.base import RewardInputs
from audio_thinker.rewards.function import FunctionReward, wrap_callable
from audio_thinker.rewards.suite import RewardError, build_reward_suite, build_term
from audio_thinker.rewards.trl_style import TRLStyleReward

TEXTS = ["<think>high pitch</think><answer>high</answer>", "<answer>low</answer>"]


def _inputs(conversational: bool = False, **meta) -> RewardInputs:
    """Two completions of one example; `meta` as a TRL/ms-SWIFT record would leave it (`columns`, `prompt`)."""
    example = AudioQAExample(
        id="q1",
        question="High or low?",
        answer="high",
        choices=["low", "high"],
        task="pitch",
        meta={"conversational": conversational, **meta},
    )
    return RewardInputs([parse_completion(t) for t in TEXTS], [example] * 2, [2, 0], [1, 1], 2, step=3, total_steps=9)


# --- TRL's documented shapes --------------------------------------------------------------------------------------


def reward_length(completions, **kwargs):
    """TRL's standard-format shape: completions are strings."""
    return [float(len(c)) for c in completions]


def reward_contains_solution(completions, solution, **kwargs):
    """TRL's shape with a dataset column named in the signature; None where there is no reference."""
    return [None if s is None else float(s in c) for c, s in zip(completions, solution, strict=True)]


def reward_conversational(completions, **kwargs):
    """TRL's conversational shape: each completion is [{"role": "assistant", "content": ...}]."""
    return [float("<think>" in c[0]["content"]) for c in completions]


def test_a_trl_function_gets_texts_columns_prompts_and_trainer_state():
    seen = {}

    def spy(completions, **kwargs):
        seen.update(kwargs, completions=completions)
        return [0.0] * len(completions)

    TRLStyleReward(spy, limit=5)(_inputs(columns={"solution": "high", "level": 2}, prompt="High or low?"))
    assert seen["completions"] == TEXTS  # the whole text, tags included, as TRL decodes it
    assert seen["solution"] == ["high", "high"] and seen["level"] == [2, 2] and seen["task"] == ["pitch", "pitch"]
    assert seen["prompts"] == ["High or low?"] * 2 and seen["limit"] == 5  # a config key is passed as is
    assert (seen["trainer_state"].global_step, seen["trainer_state"].max_steps) == (3, 9)


def test_trl_functions_are_wrapped_by_shape_and_score_with_none_as_not_applicable():
    term = build_term("len", OmegaConf.create({"_target_": f"{__name__}.reward_length", "weight": 0.5}))
    assert isinstance(term, TRLStyleReward) and term.weight == 0.5
    assert term(_inputs()).tolist() == [float(len(t)) for t in TEXTS]
    values = TRLStyleReward(reward_contains_solution)(_inputs())  # our own data: `solution` is the gold answer
    assert values.tolist() == [1.0, 0.0]
    values = TRLStyleReward(reward_contains_solution)(_inputs(columns={"solution": None}))
    assert all(math.isnan(v) for v in values.tolist())  # None -> NaN, which the suite skips


def test_conversational_data_gives_a_trl_function_message_lists():
    assert TRLStyleReward(reward_conversational)(_inputs(conversational=True)).tolist() == [1.0, 0.0]


def test_our_own_shape_with_examples_is_still_ours():
    def ours(completions, examples, **kwargs):
        return [float(c.answer == e.answer) for c, e in zip(completions, examples, strict=True)]

    term = wrap_callable("ours", ours)
    assert isinstance(term, FunctionReward) and term(_inputs()).tolist() == [1.0, 0.0]


# --- ms-SWIFT's ORM shape -----------------------------------------------------------------------------------------


class SolutionMatch:
    """ms-SWIFT's ORM shape: constructor options, then `__call__(self, completions, solution, **kwargs)`."""

    def __init__(self, bonus: float = 1.0) -> None:
        self.bonus = bonus

    def __call__(self, completions, solution, **kwargs) -> list[float]:
        return [self.bonus * float(s in c) for c, s in zip(completions, solution, strict=True)]


class AsyncLength:
    """ms-SWIFT's async ORM shape: an `async def __call__`."""

    async def __call__(self, completions, **kwargs) -> list[float]:
        return [float(len(c) > 30) for c in completions]


def test_an_orm_class_is_built_with_its_config_keys_and_called_with_texts_even_on_conversational_data():
    term = build_term("m", OmegaConf.create({"_target_": f"{__name__}.SolutionMatch", "weight": 2.0, "bonus": 3.0}))
    assert term.weight == 2.0 and term.function.bonus == 3.0
    assert term(_inputs(conversational=True)).tolist() == [3.0, 0.0]
    assert build_term("a", OmegaConf.create({"_target_": f"{__name__}.AsyncLength"}))(_inputs()).tolist() == [1, 0]


def test_an_orm_whose_constructor_refuses_a_key_names_the_class():
    with pytest.raises(TypeError, match=r"reward.terms.m: cannot build .*SolutionMatch\(bonsu\)"):
        build_term("m", OmegaConf.create({"_target_": f"{__name__}.SolutionMatch", "bonsu": 3.0}))


# --- errors name the function --------------------------------------------------------------------------------------


def _suite(target: str):
    return build_reward_suite(
        OmegaConf.create(
            {"_target_": "audio_thinker.rewards.suite.RewardSuite", "terms": {"mine": {"_target_": target}}}
        )
    )


def wrong_count(completions, **kwargs):
    return [1.0]


def wants_a_column(completions, gold_label):
    return [1.0] * len(completions)


def returns_text(completions, **kwargs):
    return ["yes"] * len(completions)


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("wrong_count", "reward function tests.unit.rewards.test_trl_style.wrong_count returned 1 values for"),
        ("wants_a_column", r"wants_a_column needs \['gold_label'\], which this batch does not offer"),
        ("returns_text", r"returns_text returned 'yes'; each value must be a float or None"),
    ],
)
def test_a_failing_function_is_named_with_what_went_wrong(function, message):
    with pytest.raises(RewardError, match=message) as err:
        _suite(f"{__name__}.{function}")(_inputs())
    assert "reward term 'mine' (tests.unit.rewards.test_trl_style." in str(err.value)


# --- where reward modules import from --------------------------------------------------------------------------------

MODULE = """
def brevity(completions, **kwargs):
    return [1.0 if len(c) < 30 else 0.0 for c in completions]
"""


@pytest.fixture
def clean_imports(monkeypatch):
    """sys.path and the test's reward modules restored afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in ("cwd_rewards_28", "listed_rewards_28"):
        sys.modules.pop(name, None)


def test_a_reward_module_imports_from_the_directory_the_user_runs_in(tmp_path, monkeypatch, clean_imports):
    (tmp_path / "cwd_rewards_28.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.chdir(tmp_path)
    assert _suite("cwd_rewards_28.brevity")(_inputs()).terms["mine"].tolist() == [0.0, 1.0]


def test_a_reward_module_imports_from_reward_paths(tmp_path, monkeypatch, clean_imports):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "listed_rewards_28.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.chdir(tmp_path)
    config = {
        "_target_": "audio_thinker.rewards.suite.RewardSuite",
        "paths": ["lib"],
        "terms": {"mine": {"_target_": "listed_rewards_28.brevity"}},
    }
    assert build_reward_suite(OmegaConf.create(config))(_inputs()).terms["mine"].tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match=r"reward.paths: 'nowhere' is not a directory \(resolved to .*nowhere\)"):
        build_reward_suite(OmegaConf.create({**config, "paths": ["nowhere"]}))


def test_a_module_that_does_not_import_says_where_modules_are_looked_for(tmp_path, monkeypatch, clean_imports):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"'no_such_rewards_28.brevity' \(no module named 'no_such_rewards_28'\); a "):
        _suite("no_such_rewards_28.brevity")
    (tmp_path / "cwd_rewards_28.py").write_text("import not_installed_28\n")  # found, but its import fails
    with pytest.raises(ValueError, match="No module named 'not_installed_28'"):
        _suite("cwd_rewards_28.brevity")
    (tmp_path / "listed_rewards_28.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="module 'listed_rewards_28' has no 'brevity'"):
        _suite("listed_rewards_28.brevity")
