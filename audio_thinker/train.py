"""Compose the pieces a Hydra config names and run `trainer.fit`."""

from __future__ import annotations

import logging

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from audio_thinker.jobs import resume_path
from audio_thinker.losses.grpo import GRPOLoss
from audio_thinker.module import GRPOModule
from audio_thinker.rewards.callback import RewardCallback

log = logging.getLogger(__name__)


def instantiate_dict(nodes: DictConfig | None) -> list:
    """Instantiate a keyed dict of `_target_` nodes (callbacks, loggers); null entries are switched off."""
    return [instantiate(node) for node in (nodes or {}).values() if node is not None]


# Strategies that shard parameters: bitsandbytes 4-bit weights cannot be sharded by them.
SHARDING = ("FSDPStrategy",)


def check_combination(cfg: DictConfig) -> None:
    """Fail at start, with the working alternative, on settings that cannot work together."""
    strategy = cfg.trainer.get("strategy")
    target = strategy.get("_target_", "") if isinstance(strategy, DictConfig) else str(strategy)
    zero3 = "DeepSpeed" in target and strategy.get("stage") == 3
    if cfg.model.get("quantization") and (target.endswith(SHARDING) or zero3):
        raise ValueError(
            f"quant=qlora_nf4 (4-bit weights) cannot be sharded by {target.rsplit('.', 1)[-1]}"
            f"{' stage 3' if zero3 else ''}: use strategy=ddp (or deepspeed_zero2), or quant=lora with fsdp"
        )


def build_loss(cfg: DictConfig) -> GRPOLoss:
    """The loss from `cfg.loss`; its `scale_rewards` key belongs to the advantages (the reward callback reads it)."""
    settings = OmegaConf.to_container(cfg.loss, resolve=True)
    settings.pop("scale_rewards", None)
    return instantiate(settings)


def build_module(cfg: DictConfig) -> GRPOModule:
    """Policy (+ reference), loss and optimizer as one LightningModule."""
    # _convert_="all": plain lists/dicts in optimizer state, so checkpoints load with torch's weights_only=True.
    scheduler = instantiate(cfg.scheduler, _convert_="all") if cfg.get("scheduler") else None
    optimizer = instantiate(cfg.optimizer, _convert_="all")
    return GRPOModule(instantiate(cfg.model, _convert_="all"), build_loss(cfg), optimizer, scheduler)


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """The Lightning trainer with the rollout and reward callbacks first, then the configured extras."""
    scale_rewards = cfg.loss.get("scale_rewards", "group")
    callbacks = [instantiate(cfg.rollout), RewardCallback(instantiate(cfg.reward), scale_rewards)]
    callbacks += instantiate_dict(cfg.get("callbacks"))
    loggers = instantiate_dict(cfg.get("logger"))
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one GRPO training and return the last logged metrics (`audio_thinker.jobs.objective_value` picks one)."""
    check_combination(cfg)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    module = build_module(cfg)
    trainer = build_trainer(cfg)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_path(cfg.get("ckpt_path")))
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    log.info("finished at step %d: %s", trainer.global_step, {k: round(v, 4) for k, v in metrics.items()})
    return metrics
