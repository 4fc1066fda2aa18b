"""Module-level helpers for training tests: parameter snapshots, a small rollout, a run folder without training."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.format.prompts import THINK
from audio_thinker.models.loading import build_policy
from audio_thinker.rollout.engine import SamplingSettings
from audio_thinker.rollout.sampler import sample_rollout
from tests.helpers.configs import compose_train


def snapshot(module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter, by name."""
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def tiny_rollout(module):
    """Two synthetic prompts, two thinking completions each, from `module`'s policy."""
    examples = [SyntheticAudioQA(size=2)[i] for i in range(2)]
    return sample_rollout(module.policy, examples, THINK, 2, SamplingSettings(max_new_tokens=8))


def fake_run(tmp_path, overrides, step=7, model_dtype=None):
    """A run folder as training leaves it, without training: its config and a checkpoint of perturbed weights."""
    run = tmp_path / "run"
    cfg = compose_train(run, overrides)
    policy = build_policy(cfg.model, cfg.trainer.accelerator)
    torch.manual_seed(0)
    with torch.no_grad():  # LoRA B starts at zero: give every trainable weight an effect to reproduce
        for param in policy.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.2)
    state = {f"policy.{name}": p.detach().clone() for name, p in policy.named_parameters() if p.requires_grad}
    ckpt = run / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": state, "global_step": step, "model_dtype": model_dtype or "float32"}, ckpt)
    (run / ".hydra").mkdir()
    settings = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])  # as Hydra saves it
    (run / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(settings))
    return policy, ckpt
