"""Config values are checked before the model loads, and every message names its key."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

import audio_thinker.train as train_module
from audio_thinker.cli import CONFIG_MODULE
from audio_thinker.config_checks import ConfigError
from audio_thinker.eval.run import check_eval_config

# override -> what the message must start with (the key) and contain
BAD = {
    "rollout.group_size=1": ("rollout.group_size must be >= 2", ""),
    "loss.beta=-1": ("loss.beta, loss.epsilon and loss.epsilon_high must be >= 0", "got -1"),
    "loss.aggregation=foo": ("loss.aggregation must be", "'foo'"),
    "reward.terms.accuracy.weight=abc": ("reward.terms.accuracy.weight: must be a finite number", "'abc'"),
    "reward.terms.accuracy._target_=nowhere.Reward": ("reward.terms.accuracy: ", "nowhere"),
    "optimizer.lr=-1": ("optimizer.lr: must be a number > 0", "got -1"),
    "optimizer.betas=[2,0.9]": ("optimizer: ", "beta"),
    "trainer.max_steps=-5": ("trainer.max_steps: must be an integer >= 0, or -1", "-5"),
    "data.batch_size=0": ("data.batch_size: must be an integer >= 1", "got 0"),
    "rollout.max_new_tokens=0": ("rollout.max_new_tokens: must be an integer >= 1", "got 0"),
    "rollout.temperature=0": ("rollout.temperature: must be a number > 0", "got 0"),
    "data.on_error=ignore": ("data.on_error: must be raise or skip", "'ignore'"),
    "callbacks.model_checkpoint.every_n_train_steps=-3": ("callbacks.model_checkpoint: ", "every_n_train_steps"),
    # Settings that leave a run without a gradient (issue 26: these trained silently, or skipped every step)
    "loss.epsilon=nan": ("loss.epsilon: must be a finite number, got nan", "every step is skipped"),
    "loss.beta=nan": ("loss.beta: must be a finite number, got nan", "KL term"),
    "loss.epsilon_high=inf": ("loss.epsilon_high: must be a finite number, got inf", "set a number"),
    "optimizer.weight_decay=nan": ("optimizer.weight_decay: must be a finite number, got nan", "set a number"),
    "optimizer.lr=nan": ("optimizer.lr: must be a number > 0", "got nan"),
    # A merged generation copy of a model without adapters (the default quant=none), or a misspelt value
    "rollout.generation_weights=merged": ("rollout.generation_weights=merged needs LoRA adapters", "quant=lora"),
    "rollout.generation_weights=fast": ("rollout.generation_weights must be one of policy, merged", "'fast'"),
}


@pytest.mark.parametrize("override", list(BAD))
def test_a_bad_value_fails_before_the_model_is_built_naming_its_key(train_cfg, monkeypatch, override):
    monkeypatch.setattr(train_module, "build_module", lambda cfg: pytest.fail("the model was built first"))
    start, words = BAD[override]
    with pytest.raises(ConfigError) as err:
        train_module.train(train_cfg([override]))
    assert str(err.value).startswith(start) and words in str(err.value)


def test_every_reward_weight_zero_fails_before_the_model_naming_the_weights(train_cfg, monkeypatch):
    monkeypatch.setattr(train_module, "build_module", lambda cfg: pytest.fail("the model was built first"))
    with pytest.raises(ConfigError) as err:
        train_module.train(train_cfg(["reward.terms.accuracy.weight=0", "reward.terms.format.weight=0.0"]))
    message = str(err.value)
    assert message.startswith("reward.terms: every weight is 0 (reward.terms.accuracy.weight=0, ")
    assert "no step can change the weights" in message and "reward.terms.accuracy.weight=1" in message
    train_module.check_train_config(train_cfg(["reward.terms.accuracy.weight=0"]))  # one term left is fine


def test_on_error_is_settable_with_the_synthetic_data(train_cfg):
    cfg = train_cfg(["data.on_error=skip", "data.max_skip_fraction=0.2", "data.max_empty_steps=1"])
    datamodule = train_module.instantiate(cfg.data)
    assert (datamodule.on_error, datamodule.max_skip_fraction, datamodule.max_empty_steps) == ("skip", 0.2, 1)


def _eval_cfg(overrides):
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose("eval", overrides=overrides)


@pytest.mark.parametrize(
    ("override", "start"),
    [
        ("eval.batch_size=0", "eval.batch_size must be >= 1"),
        ("eval.split=test", "eval.split: the data config has no 'test' dataset"),
        ("rollout.prompt.mode=sing", "rollout.prompt: prompt mode must be one of"),
    ],
)
def test_eval_settings_are_checked_before_the_model(override, start):
    with pytest.raises(ConfigError) as err:
        check_eval_config(_eval_cfg([override]))
    assert str(err.value).startswith(start)


@pytest.mark.parametrize(
    ("overrides", "start", "words"),
    [
        (["rollout.engine=vllm"], "rollout.generation_weights=merged: only engine=hf", "takes policy"),
        (["strategy=fsdp"], "rollout.generation_weights=merged copies each rank's whole", "strategy=ddp"),
    ],
)
def test_merged_generation_weights_refuse_a_server_engine_and_sharded_adapters(
    train_cfg, monkeypatch, overrides, start, words
):
    monkeypatch.setattr(train_module, "build_module", lambda cfg: pytest.fail("the model was built first"))
    with pytest.raises(ConfigError) as err:
        train_module.train(train_cfg(["quant=lora", "rollout.generation_weights=merged", *overrides]))
    assert str(err.value).startswith(start) and words in str(err.value)
