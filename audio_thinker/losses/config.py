"""The `loss` config node: the loss itself, and `scale_rewards`, which belongs to the advantages."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from audio_thinker.losses.advantages import ScaleRewards, scale_rewards_mode
from audio_thinker.losses.grpo import GRPOLoss


def build_loss(loss: DictConfig) -> GRPOLoss:
    """The loss a `loss` node describes; its `scale_rewards` key is read by the reward callback, not the loss."""
    settings = OmegaConf.to_container(loss, resolve=True)
    settings.pop("scale_rewards", None)
    return instantiate(settings)


def scale_rewards_of(loss: DictConfig) -> ScaleRewards:
    """`loss.scale_rewards`: group | batch | none."""
    return scale_rewards_mode(loss.get("scale_rewards", "group"))
