"""The mistakes a new user makes first, each reported before the model loads with what to do."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

import audio_thinker.train as train_module
from audio_thinker.cli import CONFIG_MODULE
from audio_thinker.config_checks import ConfigError, check_train_config
from audio_thinker.eval.run import check_eval_config
from audio_thinker.models.loading import load_policy
from audio_thinker.models.sources import ModelSourceError, check_model_source


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if the model is built: every error here must come first."""
    monkeypatch.setattr(train_module, "build_module", lambda cfg: pytest.fail("the model was built first"))


def fails_with(train_cfg, overrides) -> str:
    with pytest.raises(ConfigError) as err:
        train_module.train(train_cfg(overrides))
    return str(err.value)


def test_a_missing_local_model_path_is_not_called_a_bad_repo_id(train_cfg, no_model, tmp_path):
    message = fails_with(train_cfg, [f"model.path={tmp_path}/models/qwen2-audio"])
    assert message.startswith(f"model.path='{tmp_path}/models/qwen2-audio': not a local directory and not a Hub id")
    assert "Repo id must be" not in message
    with pytest.raises(ModelSourceError, match="not a local directory and not a Hub id"):  # and when called directly
        load_policy("../my-model")


def test_an_adapter_folder_as_model_path_says_how_to_load_an_adapter(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelSourceError, match="it holds a LoRA adapter: set model.path to its base model"):
        check_model_source(str(tmp_path))


def test_an_uncached_hub_id_offline_names_the_id_and_hf_hub_offline(train_cfg, no_model, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache (read at call time by the check)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    message = fails_with(train_cfg, ["model.path=Qwen/Qwen2-Audio-7B-Instruct"])
    assert message.startswith("model.path='Qwen/Qwen2-Audio-7B-Instruct': not a local directory, and HF_HUB_OFFLINE=1")
    assert "hf download Qwen/Qwen2-Audio-7B-Instruct" in message


def test_forgetting_the_validation_manifest_hints_data_val_null(train_cfg, no_model, tmp_path):
    message = fails_with(train_cfg, ["data=manifest", f"data.train.path={tmp_path}/train.jsonl"])
    assert message.startswith("data.val.path: no value") and "data.val=null to train without validation" in message


def test_eval_without_its_manifest_asks_for_it_without_the_null_hint():
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose("eval", overrides=["data=manifest"])
    with pytest.raises(ConfigError) as err:
        check_eval_config(cfg)
    assert str(err.value).startswith("data.val.path: no value") and "null" not in str(err.value)


def test_a_gpu_accelerator_without_a_gpu_fails_before_the_model(train_cfg, no_model, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    message = fails_with(train_cfg, ["trainer.accelerator=gpu"])
    assert message.startswith("trainer.accelerator=gpu: no CUDA GPU is visible")
    assert "CUDA_VISIBLE_DEVICES=''" in message and "trainer.accelerator=cpu" in message


def test_ckpt_path_last_needs_a_run_that_writes_checkpoints(train_cfg, no_model, tmp_path):
    check_train_config(train_cfg(["ckpt_path=last"]))  # none yet: a fresh start (tests/unit/callbacks/test_resume)
    message = fails_with(train_cfg, ["ckpt_path=last", "callbacks.model_checkpoint=null"])
    assert message.startswith("ckpt_path=last: this run writes no checkpoints")
