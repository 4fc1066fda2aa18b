"""Every file of configs/model/ is `load_policy` with the shared defaults of `model/base/policy` and its own path."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from tests.helpers.configs import CONFIGS, compose_train

MODELS = sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml"))
BASE = OmegaConf.load(CONFIGS / "model" / "base" / "policy.yaml")


@pytest.mark.parametrize("model", MODELS)
def test_a_model_file_is_the_base_with_its_own_path(tmp_path, model):
    node = compose_train(tmp_path, [f"model={model}"]).model
    assert set(BASE) <= set(node) and node._target_ == BASE._target_
    assert not OmegaConf.is_missing(node, "path") and node.path.strip()
    assert "base" not in node  # the base fills the model node itself, not a `model.base` child


def test_the_base_alone_is_not_a_model(tmp_path):
    node = compose_train(tmp_path, ["model=base/policy"]).model
    assert OmegaConf.is_missing(node, "path")  # `???`: a run without a model path stops, naming model.path
