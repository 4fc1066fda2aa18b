"""The CLI behaves like one: --version, a short `train --help` of our own, tab completion through the installed
script, and a user's mistakes as one line with "did you mean" instead of a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from audio_thinker import cli
from audio_thinker.cli_errors import CLI_MARK, did_you_mean
from tests.helpers.runs import run_cli


@pytest.fixture
def run_main(monkeypatch, capsys):
    """`audio-thinker <args>` in this process: (exit code, stdout, stderr); argv and environment restored."""
    for name in ("HYDRA_FULL_ERROR", CLI_MARK, cli.COMMAND_ENV):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["audio-thinker", *args])
        with pytest.raises(SystemExit) as exit_:
            cli.main(list(args))
        out = capsys.readouterr()
        return exit_.value.code, out.out, out.err

    return run


def test_version(run_main):
    assert run_main("--version") == (0, f"audio-thinker {version('audio-thinker')}\n", "")


@pytest.mark.parametrize("command", ["train", "eval"])
def test_command_help_is_short_and_ours(run_main, command):
    code, out, _ = run_main(command, "--help")
    assert code == 0 and out.startswith(f"usage: audio-thinker {command}") and len(out.splitlines()) < 50
    assert f"audio-thinker {command} [overrides] --cfg job" in out and "--hydra-help" in out
    assert "Powered by Hydra" not in out


def test_train_help_shows_the_values_of_the_config_the_overrides_pick(run_main):
    _, out, _ = run_main("train", "reward=cesar", "loss=dr_grpo", "--help")
    assert "  reward     cesar " in out and "  loss       dr_grpo " in out
    assert "rollout.group_size=8 " in out and "hydra.run.dir=outputs/train/runs/<date>" in out


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("rollout.group_sise=4", "rollout.group_sise=4: no such key (did you mean 'rollout.group_size'?)"),
        ("rollout.gro=4", "(did you mean 'rollout.group_size'?)"),  # cut short
        ("rollout.repetition_penalty=1.1", "(did you mean 'rollout.generation_kwargs.repetition_penalty'?)"),
        ("reward=rlvrr", "reward=rlvrr: no such option (did you mean reward=rlvr?); the options are audio_thinker"),
        ("loss.beta=[", "audio-thinker train: error: no viable alternative at input '['"),
    ],
)
def test_a_bad_override_is_one_line_with_did_you_mean(run_main, override, line):
    code, out, err = run_main("train", override)
    assert code == 1 and out == "" and line in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("audio-thinker train: error: ")


def test_did_you_mean_prefers_a_key_cut_short_then_a_close_one_then_the_same_name_elsewhere():
    keys = ["rollout.prompt", "rollout.group_size", "optimizer.lr", "trainer.max_steps"]
    assert did_you_mean("rollout.gro", keys) == " (did you mean 'rollout.group_size'?)"
    assert did_you_mean("trainer.max_step", keys) == " (did you mean 'trainer.max_steps'?)"
    assert did_you_mean("lr", keys) == " (did you mean 'optimizer.lr'?)" and did_you_mean("zzz", keys) == ""


def test_a_missing_file_and_a_bad_path_are_one_line_not_a_traceback(tmp_path):
    result = run_cli(
        "train", "data=manifest", f"data.train.path={tmp_path}/nope.jsonl", "data.val=null", f"hydra.run.dir={tmp_path}"
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"audio-thinker train: error: data.train: manifest not found: {tmp_path}/nope.jsonl; check the path."
    )


def test_a_bug_keeps_its_traceback_and_hydra_full_error_is_respected():
    from audio_thinker.cli_errors import user_error_line

    assert user_error_line(KeyError("internal")) is None  # not a user's mistake: the traceback stays
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    env.pop(CLI_MARK, None)
    result = subprocess.run(
        [sys.executable, "-m", "audio_thinker.cli", "train", "rollout.group_sise=4"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert "Traceback" in result.stderr and "did you mean" not in result.stderr


def test_the_installed_completion_script_completes_commands_keys_and_options(tmp_path):
    script = shutil.which("audio-thinker") or str(Path(sys.executable).with_name("audio-thinker"))
    if not Path(script).is_file() or shutil.which("bash") is None:
        pytest.skip("needs the installed audio-thinker console script and bash")
    install = subprocess.run([script, "-sc", "install=bash"], capture_output=True, text=True, check=True)
    (tmp_path / "complete.sh").write_text(install.stdout)
    probe = """
source "$1"
for line in "audio-thinker tr" "audio-thinker train rollout.gro" "audio-thinker train reward=c" \\
            "audio-thinker eval eval.max_ex"; do
  COMP_LINE="$line"; COMP_POINT=${#line}; words=($line); COMP_CWORD=$((${#words[@]} - 1))
  hydra_bash_completion
  echo "$line -> ${COMPREPLY[*]}"
done
"""
    path = f"{Path(script).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    result = subprocess.run(
        ["bash", "-c", probe, "probe", str(tmp_path / "complete.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
        check=True,
    )
    assert result.stdout.splitlines() == [
        "audio-thinker tr -> train",
        "audio-thinker train rollout.gro -> rollout.group_size=",
        "audio-thinker train reward=c -> reward=cesar",
        "audio-thinker eval eval.max_ex -> eval.max_examples=",
    ]
