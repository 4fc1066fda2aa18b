"""The configs ship inside the package and Hydra finds them there; a user's own directory adds to them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

import audio_thinker
from audio_thinker import cli
from tests.helpers.configs import FAST, user_config_dir
from tests.helpers.runs import run_cli


def test_the_configs_are_found_in_the_package_not_beside_it():
    assert cli.config_path() == "pkg://audio_thinker.configs"
    packaged = Path(resources.files(cli.CONFIG_MODULE))
    assert packaged == Path(audio_thinker.__file__).parent / "configs"  # no source checkout needed
    assert (packaged / "train.yaml").is_file() and (packaged / "eval.yaml").is_file()


def test_composing_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here
    cfg = cli.compose_run(tmp_path, ["reward=cesar"])
    assert "keywords" in cfg.reward.terms


def test_a_package_without_configs_says_to_reinstall(monkeypatch):
    monkeypatch.setattr(cli, "CONFIG_MODULE", "audio_thinker.no_such_configs")
    with pytest.raises(SystemExit, match="the package has no configs .* reinstall it"):
        cli.config_path()


def test_a_users_config_dir_on_the_search_path_adds_a_reward_suite(tmp_path):
    mine = user_config_dir(tmp_path / "my_configs")
    cfg = cli.compose_run(tmp_path, [f"hydra.searchpath=[file://{mine}]", "reward=my_suite"])
    assert set(cfg.reward.terms) == {"accuracy", "format", "my_format"}  # the packaged rlvr, plus the user's term


def test_the_cli_takes_a_users_config_dir(tmp_path):
    mine = user_config_dir(tmp_path / "my_configs")
    result = run_cli("train", "--config-dir", str(mine), *FAST, "reward=my_suite", "--cfg", "job")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "my_format:" in result.stdout and "accuracy:" in result.stdout
