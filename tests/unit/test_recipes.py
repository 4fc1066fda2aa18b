"""The line a run starts with: which recipe (configs/recipe/<model>_<data>.yaml) applies, or which defaults replace
one, with the settings involved."""

from __future__ import annotations

import pytest

from audio_thinker.cli import compose_run
from audio_thinker.recipes import run_recipe_line, show

RECIPE = "recipe tiny_qwen2_audio_synthetic applies (recipe/tiny_qwen2_audio_synthetic.yaml): "


def line(tmp_path, overrides: list[str], only: tuple[str, ...] = ()) -> str:
    return run_recipe_line(compose_run(tmp_path, overrides), only)


def test_the_default_run_names_its_recipe_and_every_setting_it_takes_from_it(tmp_path):
    assert line(tmp_path, []) == (
        RECIPE + "data.batch_size=8, data.train.tasks=[pitch_compare, loudness_compare], "
        "data.train.difficulties=[easy, medium], rollout.group_size=8, rollout.prompt.letter_options=false, "
        "optimizer.lr=0.001, trainer.max_steps=60, trainer.val_check_interval=20"
    )


def test_a_recipe_setting_overridden_on_the_command_line_is_named_with_both_values(tmp_path):
    text = line(tmp_path, ["optimizer.lr=0.01", "trainer.max_steps=5"])
    assert text.startswith(RECIPE) and "optimizer.lr=0.001" not in text
    assert text.endswith("; overridden: optimizer.lr=0.01 (recipe 0.001), trainer.max_steps=5 (recipe 60)")


@pytest.mark.parametrize("overrides", [["data=manifest"], ["~recipe"]])
def test_own_data_on_the_embedded_model_says_which_defaults_replace_its_recipe(tmp_path, overrides):
    text = line(tmp_path, overrides)
    start = (
        "no recipe for model=tiny_qwen2_audio data=manifest" if overrides == ["data=manifest"] else "recipe switched"
    )
    assert text.startswith(start)
    assert (
        "defaults apply where recipe tiny_qwen2_audio_synthetic sets its own: data.batch_size=2 (recipe 8), "
        "rollout.group_size=4 (recipe 8), rollout.prompt.letter_options=true (recipe false), optimizer.lr=1e-05 "
        "(recipe 0.001), trainer.max_steps=100 (recipe 60), trainer.val_check_interval=25 (recipe 20); see docs/"
    ) in text


def test_a_model_without_any_recipe_gets_a_short_line(tmp_path):
    assert line(tmp_path, ["model=tiny_qwen2"]).startswith(
        "no recipe for model=tiny_qwen2 data=synthetic: the config groups' defaults apply"
    )


def test_eval_hears_only_of_the_settings_it_reads(tmp_path):
    text = line(tmp_path, ["data=manifest"], only=("data.train", "data.val", "rollout.prompt"))
    assert text.endswith(
        "sets its own: rollout.prompt.letter_options=true (recipe false); see docs/configuration.md#recipes"
    )


def test_a_recipe_in_the_users_config_directory_applies_and_is_named(tmp_path):
    (tmp_path / "conf" / "recipe").mkdir(parents=True)
    (tmp_path / "conf" / "recipe" / "tiny_qwen2_audio_manifest.yaml").write_text(
        "# @package _global_\noptimizer:\n  lr: 3.0e-4\n"
    )
    text = line(tmp_path, ["data=manifest", f"hydra.searchpath=[file://{tmp_path / 'conf'}]"])
    assert (
        text == "recipe tiny_qwen2_audio_manifest applies (recipe/tiny_qwen2_audio_manifest.yaml): optimizer.lr=0.0003"
    )


def test_values_are_shown_as_they_are_written_on_the_command_line():
    assert [show(v) for v in (1e-3, 1e-5, 8, False, None, ["a", 0.5])] == [
        "0.001",
        "1e-05",
        "8",
        "false",
        "null",
        "[a, 0.5]",
    ]
