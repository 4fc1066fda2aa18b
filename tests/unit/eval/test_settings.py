"""The `eval:` config node fails fast on mistakes."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from audio_thinker.eval.run import EvalSettings


def test_budgets_are_sorted_and_deduplicated():
    settings = EvalSettings.from_config(OmegaConf.create({"budgets": [50, 0, 25, 50]}))
    assert settings.budgets == [0, 25, 50]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"budgets": [-1, 10]}, ">= 0 tokens"),
        ({"max_exampels": 3}, "unknown eval setting"),
        ({"budgets": [], "max_new_tokens": None}, "nothing to evaluate"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_mistakes_fail_with_the_field_name(values, message):
    with pytest.raises(ValueError, match=message):
        EvalSettings.from_config(OmegaConf.create(values))
