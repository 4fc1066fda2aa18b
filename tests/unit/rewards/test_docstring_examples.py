"""The runnable examples in the reward terms' docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["adaptive", "combiners", "consistency", "keywords", "outcome", "overthinking"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"audio_thinker.rewards.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
