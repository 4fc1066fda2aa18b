"""Check a composed config before anything expensive loads; every message starts with the key at fault.

A bad value should cost a second, not the minutes a 7B model takes to load. `check_train_config` (first thing in
`train`) and `eval.run.check_eval_config` (first thing in `evaluate`) do two things:

1. Range checks on plain values no constructor sees before the model exists (`RULES`: `data.batch_size`,
   `rollout.max_new_tokens`, `rollout.temperature`, `optimizer.lr`, `trainer.max_steps`, reward weights, ...), and
   what would leave a run without a gradient: every reward weight 0, or a NaN/inf anywhere in the settings
   (`loss.epsilon=nan` skips every step, `loss.beta=nan` drops the KL term).
2. They build every cheap object once and throw it away, so its own constructor validates it: the loss (its
   aggregations, KL estimators, reward scaling), the rollout callback, the reward suite, the optimizer and the
   scheduler on a one-element stand-in parameter, and each extra callback. Their errors come back as
   `ConfigError("<key>: <their message>")` (Hydra's `full_key` names the nested node when there is one).

Before those, what a new user most often gets wrong: a value left `???` in the data config (`data.val.path`:
hinting `data.val=null`), a `model.path` that is neither a local model directory nor a Hub id (or, under
`HF_HUB_OFFLINE=1`, an id not in the cache), `trainer.accelerator=gpu` on a machine without one, and settings that
cannot work together (`check_combination`: 4-bit weights under a strategy that shards parameters, a merged
generation copy without adapters).

Keys a config does not have are not checked: custom data or rollout configs keep working.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from audio_thinker.checkpoints.resume_point import resume_point
from audio_thinker.losses.config import build_loss, scale_rewards_of
from audio_thinker.models.run_config import as_data
from audio_thinker.models.sources import ModelSourceError, check_model_source
from audio_thinker.rewards.suite import build_reward_suite
from audio_thinker.rollout.generation_copy import KEY as GENERATION_WEIGHTS
from audio_thinker.rollout.generation_copy import NEEDS_ADAPTERS


class ConfigError(ValueError):
    """A config value that cannot work; the message starts with its key."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# key -> (accepts the value, what it must be). A missing key is skipped; `null` is passed to the test.
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (_integer, "an integer"),
    "data.batch_size": (lambda v: _integer(v) and v >= 1, "an integer >= 1 (prompts per step)"),
    "data.num_workers": (lambda v: _integer(v) and v >= 0, "an integer >= 0"),
    "data.max_audio_seconds": (lambda v: v is None or (_number(v) and v > 0), "a number of seconds > 0, or null"),
    "data.on_error": (lambda v: v in ("raise", "skip"), "raise or skip"),
    "data.max_skip_fraction": (lambda v: _number(v) and 0 <= v <= 1, "a share within [0, 1]"),
    "data.max_empty_steps": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "data.audio_control": (lambda v: v in (None, "silence", "shuffle"), "null, silence or shuffle"),
    "data.max_row_bytes": (lambda v: v is None or (_integer(v) and v >= 1), "an integer >= 1, or null (no limit)"),
    "data.max_text_chars": (lambda v: v is None or (_integer(v) and v >= 1), "an integer >= 1, or null (no limit)"),
    "rollout.max_new_tokens": (lambda v: _integer(v) and v >= 1, "an integer >= 1 (tokens per completion)"),
    "rollout.temperature": (lambda v: _number(v) and v > 0, "a number > 0 (use a small value for near-greedy)"),
    "rollout.top_p": (lambda v: _number(v) and 0 < v <= 1, "a number within (0, 1]"),
    "rollout.top_k": (lambda v: _integer(v) and v >= 0, "an integer >= 0 (0: off)"),
    "optimizer.lr": (lambda v: _number(v) and v > 0, "a number > 0"),
    "trainer.max_steps": (lambda v: _integer(v) and v >= -1, "an integer >= 0, or -1 for no limit"),
    "trainer.max_epochs": (lambda v: v is None or (_integer(v) and v >= -1), "an integer >= 0, -1 or null"),
    "trainer.accumulate_grad_batches": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "trainer.gradient_clip_val": (lambda v: v is None or (_number(v) and v >= 0), "a number >= 0, or null"),
    "trainer.log_every_n_steps": (lambda v: _integer(v) and v >= 0, "an integer >= 0"),
}
EVAL_RULES = {
    key: RULES[key]
    for key in ("seed", "data.max_audio_seconds", "data.audio_control", "data.max_row_bytes", "data.max_text_chars")
}
_ABSENT = object()


def check_rules(cfg: DictConfig, rules: dict[str, tuple[Callable[[Any], bool], str]]) -> None:
    """Every present key of `rules` holds an acceptable value."""
    for key, (accepts, expected) in rules.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
        if value is not _ABSENT and not accepts(value):
            raise ConfigError(f"{key}: must be {expected}, got {value!r}")


def check_reward_weights(cfg: DictConfig) -> None:
    """`reward.terms.<name>.weight` is a finite number for every term, and not 0 for all of them."""
    terms = OmegaConf.select(cfg, "reward.terms", default=None) or {}
    weights = {}
    for name, term in terms.items():
        if term is None:  # switched off
            continue
        weight = term.get("weight", 1.0) if isinstance(term, DictConfig) else 1.0
        if not _number(weight):
            raise ConfigError(f"reward.terms.{name}.weight: must be a finite number, got {weight!r}")
        weights[name] = weight
    if weights and not any(weights.values()):
        listed = ", ".join(f"reward.terms.{name}.weight=0" for name in weights)
        raise ConfigError(
            f"reward.terms: every weight is 0 ({listed}): every reward is 0, so every advantage is 0 and no step "
            f"can change the weights; give at least one term a weight, e.g. reward.terms.{next(iter(weights))}.weight=1"
        )


# What a NaN or inf does where users most often type one (any other number gets the general message).
NONFINITE_EFFECTS = {
    "loss.epsilon": "every ratio clip is NaN, so every step's loss is NaN and every step is skipped",
    "loss.epsilon_high": "every ratio clip is NaN, so every step's loss is NaN and every step is skipped",
    "loss.beta": "the KL term is NaN or silently vanishes",
}


def check_finite_numbers(cfg: DictConfig) -> None:
    """No number in the run's settings (interpolations resolved; Hydra's own node aside) is NaN or infinite."""
    for name in cfg:
        if name == "hydra":
            continue
        try:
            node = cfg[name]
        except Exception:  # noqa: BLE001  (an unresolvable value is another check's business)
            continue
        for key, value in _numbers(as_data(node, str(name), {}), str(name)):
            if not math.isfinite(value):
                effect = NONFINITE_EFFECTS.get(key, "a NaN or inf setting makes the loss or the sampling NaN")
                raise ConfigError(f"{key}: must be a finite number, got {value!r} ({effect}); set a number")


def _numbers(tree: Any, key: str = "") -> list[tuple[str, float]]:
    """(dotted key, value) of every float in a plain dict/list tree (`key`: the tree's own key)."""
    if isinstance(tree, dict):
        return [item for name, child in tree.items() for item in _numbers(child, f"{key}.{name}" if key else name)]
    if isinstance(tree, list):
        return [item for index, child in enumerate(tree) for item in _numbers(child, f"{key}[{index}]")]
    return [(key, tree)] if isinstance(tree, float) else []


def missing_values(node: Any, key: str) -> list[str]:
    """Dotted keys under `node` (named `key`) whose value is `???`, without resolving any interpolation."""
    if not isinstance(node, DictConfig):
        return []
    found = []
    for name in node:
        if OmegaConf.is_missing(node, name):
            found.append(f"{key}.{name}")
        else:
            found += missing_values(node._get_node(name), f"{key}.{name}")
    return found


def check_data_values(cfg: DictConfig, splits: tuple[str, ...] = ("train", "val")) -> None:
    """Every `???` of the data config's `splits` is filled; the val split may instead be switched off."""
    data = cfg.get("data")
    for split in splits:
        node = data._get_node(split) if isinstance(data, DictConfig) and split in data else None
        for key in missing_values(node, f"data.{split}"):
            training = len(splits) > 1  # evaluation needs the split it evaluates; training can do without val
            hint = f" (or data.{split}=null to train without validation)" if training and split == "val" else ""
            raise ConfigError(
                f"{key}: no value (??? in the data config); set it on the command line, e.g. {key}=<file>{hint}"
            )


def check_model_path(cfg: DictConfig) -> None:
    """`model.path` is an embedded name, a local model directory or a Hub id (cached, when offline)."""
    path = OmegaConf.select(cfg, "model.path", default=None)
    if isinstance(path, str):
        try:
            check_model_source(path)
        except ModelSourceError as err:
            raise ConfigError(str(err)) from None


def check_accelerator(cfg: DictConfig) -> None:
    """`trainer.accelerator=gpu` (or cuda) needs a CUDA device this process can see."""
    accelerator = OmegaConf.select(cfg, "trainer.accelerator", default=None)
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        shown = f"; CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
        raise ConfigError(
            f"trainer.accelerator={accelerator}: no CUDA GPU is visible to this process (torch.cuda.is_available() "
            f"is False{shown}); use trainer.accelerator=cpu, or auto (the GPU when there is one)"
        )


# Strategies that shard parameters: bitsandbytes 4-bit weights cannot be sharded by them.
SHARDING = ("FSDPStrategy",)


def _sharding_strategy(cfg: DictConfig) -> str | None:
    """The name of `trainer.strategy` when it shards parameters (FSDP, DeepSpeed stage 3), else None."""
    strategy = cfg.trainer.get("strategy")
    target = strategy.get("_target_", "") if isinstance(strategy, DictConfig) else str(strategy)
    if target.endswith(SHARDING):
        return target.rsplit(".", 1)[-1]
    if "DeepSpeed" in target and strategy.get("stage") == 3:
        return f"{target.rsplit('.', 1)[-1]} stage 3"
    return None


def check_combination(cfg: DictConfig) -> None:
    """Settings that cannot work together, with the working alternative: 4-bit weights under a sharding strategy,
    and a merged generation copy without adapters or of sharded ones."""
    sharding = _sharding_strategy(cfg)
    if cfg.model.get("quantization") and sharding:
        raise ConfigError(
            f"quant=qlora_nf4 (4-bit weights) cannot be sharded by {sharding}: use strategy=ddp (or "
            "deepspeed_zero2), or quant=lora with fsdp"
        )
    if OmegaConf.select(cfg, GENERATION_WEIGHTS, default="policy") != "merged":
        return
    if not cfg.model.get("lora"):
        raise ConfigError(NEEDS_ADAPTERS)
    if sharding:
        raise ConfigError(
            f"{GENERATION_WEIGHTS}=merged copies each rank's whole language model, which {sharding} shards: use "
            f"strategy=ddp (or deepspeed_zero2), or {GENERATION_WEIGHTS}=policy"
        )


def check_resume(cfg: DictConfig) -> None:
    """`ckpt_path=last` needs a checkpoint in the run's checkpoint folder (else training would start afresh)."""
    if cfg.get("ckpt_path") != "last":
        return
    dirpath = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
    try:
        resume_point([Path(dirpath)] if dirpath else [], "last")
    except (FileNotFoundError, RuntimeError) as err:
        raise ConfigError(str(err)) from None


def build(key: str, make: Callable[[], Any]) -> Any:
    """`make()`, with any error it raises re-raised as a `ConfigError` naming `key` (or Hydra's nested key)."""
    try:
        return make()
    except (InstantiationException, ValueError, TypeError, ImportError, AttributeError) as err:
        cause = err.__cause__ if isinstance(err, InstantiationException) and err.__cause__ else err
        message = str(cause).strip()
        nested = re.search(r"full_key: (\S+)", str(err))
        where = nested.group(1) if nested else key
        message = re.sub(r"\s*full_key: \S+$", "", message)
        if message.startswith(where) or f"{where}." in message:  # the constructor named its key already
            raise ConfigError(message) from err
        raise ConfigError(f"{where}: {message}") from err


def _stand_in() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(1))]


def check_train_config(cfg: DictConfig) -> None:
    """Validate everything cheap in a training config (module docstring) before the model is built."""
    check_data_values(cfg)
    check_model_path(cfg)
    check_accelerator(cfg)
    check_combination(cfg)
    check_resume(cfg)
    check_rules(cfg, RULES)
    check_reward_weights(cfg)
    check_finite_numbers(cfg)
    build("loss", lambda: build_loss(cfg.loss))
    build("loss.scale_rewards", lambda: scale_rewards_of(cfg.loss))
    build("rollout", lambda: instantiate(cfg.rollout))
    build("reward", lambda: build_reward_suite(cfg.reward))
    optimizer = build("optimizer", lambda: instantiate(cfg.optimizer, _convert_="all")(params=_stand_in()))
    if cfg.get("scheduler"):
        build("scheduler", lambda: instantiate(cfg.scheduler, _convert_="all")(optimizer=optimizer))
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is not None:
            build(f"callbacks.{name}", lambda node=node: instantiate(node))
