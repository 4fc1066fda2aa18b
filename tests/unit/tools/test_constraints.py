"""tools/constraints.py and constraints.txt: every package `.[dev]` pulls is pinned, and drift is reported."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from tools import constraints as tool

CONSTRAINTS = Path(__file__).resolve().parents[3] / "constraints.txt"


def test_the_closure_of_dev_follows_extras_and_leaves_other_tools_out():
    installed = tool.requirements_closure()
    assert installed["torch"] == metadata.version("torch")
    assert {"pytest", "ruff", "wandb", "hydra-submitit-launcher", "datasets", "filelock"} <= installed.keys()
    assert "audio-thinker" not in installed and "trl" not in installed  # trl: the bench extra, not dev


def test_every_package_dev_pulls_is_pinned_exactly():
    pins = tool.read_pins(CONSTRAINTS)
    unpinned = tool.requirements_closure().keys() - pins.keys()
    assert not unpinned, f"not in constraints.txt: {sorted(unpinned)}; python tools/constraints.py freeze"
    assert not [f"{n}=={v}" for n, v in pins.items() if "+" in v]  # no local labels (+cpu): PyPI serves none


def test_diff_names_each_changed_new_and_gone_package(tmp_path, capsys):
    pins = tmp_path / "constraints.txt"
    pins.write_text("# a comment\nfoo==1.0\nbar==2.0  # pinned\nGone_Pkg==3\n")
    assert tool.read_pins(pins) == {"foo": "1.0", "bar": "2.0", "gone-pkg": "3"}
    lines = tool.differences(tool.read_pins(pins), {"foo": "1.0", "bar": "2.1", "new": "0.1"})
    assert lines == ["bar: 2.0 -> 2.1", "gone-pkg: 3 -> (not installed)", "new: (not pinned) -> 0.1"]
    assert tool.main(["diff", str(pins)]) == 1 and "(not pinned)" in capsys.readouterr().out
    pins.write_text("foo>=1.0\n")
    with pytest.raises(ValueError, match="'foo>=1.0' is not name==version"):
        tool.read_pins(pins)
