"""The GRPO loop on the embedded tiny model: it runs, it updates what it should, and it learns."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from audio_thinker.train import build_module, build_trainer, train
from tests.helpers.rewards import LENGTH_REWARD
from tests.helpers.tb import read_scalars
from tests.helpers.training import snapshot, tiny_rollout


def _fit(cfg):
    module = build_module(cfg)
    before = snapshot(module)
    trainer = build_trainer(cfg)
    trainer.fit(module, datamodule=instantiate(cfg.data))
    return module, before, trainer


def test_a_step_changes_every_trainable_parameter_and_no_reference_parameter(train_cfg):
    cfg = train_cfg(["trainer.max_steps=1", "optimizer.lr=1e-2", "loss.beta=0.04", *LENGTH_REWARD])
    module, before, trainer = _fit(cfg)
    assert trainer.global_step == 1
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("policy.") for n in trainable)
    frozen_audio = [n for n in before if n.startswith("policy.") and ".audio_tower." in n]
    assert frozen_audio and not set(frozen_audio) & trainable  # audio encoder frozen by default
    for name, param in module.named_parameters():
        changed = not torch.equal(before[name], param.detach())
        if name in trainable:
            assert changed, f"trainable parameter {name} did not change"
        else:
            assert not changed, f"frozen parameter {name} changed"
    assert any(n.startswith("reference.") for n in before)  # the frozen copy exists and stayed put


def test_lora_reference_is_the_base_with_adapters_disabled(train_cfg):
    cfg = train_cfg(["quant=lora", "trainer.max_steps=1", "optimizer.lr=1e-2", *LENGTH_REWARD])
    module, before, _ = _fit(cfg)
    assert module.reference is None  # no second copy of the weights
    names = {n for n, p in module.named_parameters() if p.requires_grad}
    assert names and all("lora_" in n for n in names)
    for name, param in module.named_parameters():
        if "lora_B" in name:  # B starts at zero, so a step must move it
            assert not torch.equal(before[name], param.detach()), name
        if "lora_" not in name:
            assert torch.equal(before[name], param.detach()), f"base weight {name} changed"
    # The reference pass (adapters disabled) equals a plain model without the adapters' effect.
    rollout = tiny_rollout(module)
    with torch.no_grad():
        ref = module.reference_logps(rollout)
        pol = module.policy_logps(rollout)
        with module.policy.model.disable_adapter():
            base = module.policy.completion_logps(rollout.encoding, rollout.completion_ids, rollout.completion_mask)
    assert torch.allclose(ref, base)
    assert not torch.allclose(ref, pol)  # the trained adapters do change the policy


@pytest.mark.slow  # fast path of learning: test_listening's 20-step default run
def test_it_learns_a_dense_reward(train_cfg, tmp_path):
    """The proof the RL loop is right: mean reward climbs clearly within a bounded number of steps."""
    cfg = train_cfg(
        [
            "trainer.max_steps=50",
            "optimizer.lr=5e-3",
            "loss.beta=0",
            "rollout.max_new_tokens=16",
            "rollout.group_size=4",
            "~reward.terms.format",
            "~reward.terms.accuracy",
            "+reward.terms.words._target_=tests.helpers.rewards.WordCountReward",
            "data.train.size=64",
            "callbacks.model_checkpoint=null",
        ]
    )
    train(cfg)
    rewards = [value for _, value in read_scalars(tmp_path / "tensorboard", "reward/total")]
    assert len(rewards) == 50
    first, last = sum(rewards[:10]) / 10, sum(rewards[-10:]) / 10
    # The reward lies in [0, 2] for 16 tokens; a random-walk policy would stay near its start.
    assert last > 1.5 * first and last > first + 0.5, f"reward did not climb: first 10 {first:.3f}, last 10 {last:.3f}"


def test_nonfinite_loss_is_skipped_counted_and_leaves_weights_alone(train_cfg, monkeypatch):
    cfg = train_cfg(["trainer.max_steps=2", "optimizer.lr=1e-2", "loss.beta=0"])
    module = build_module(cfg)
    before = snapshot(module)
    original = module.loss_fn.forward

    def nan_loss(*args, **kwargs):
        out = original(*args, **kwargs)
        return out._replace(loss=out.loss * float("nan"))

    monkeypatch.setattr(module.loss_fn, "forward", nan_loss)
    trainer = build_trainer(cfg)
    trainer.fit(module, datamodule=instantiate(cfg.data))
    assert module.nonfinite_losses == 2
    for name, param in module.named_parameters():
        assert torch.equal(before[name], param.detach()), name


def test_rollout_reuse_uses_stored_old_logprobs(train_cfg, tmp_path):
    """num_iterations=2: each rollout serves two optimizer steps; on the second the ratio moves off 1."""
    cfg = train_cfg(
        [
            "rollout.num_iterations=2",
            "trainer.max_steps=4",
            "optimizer.lr=1e-2",
            "loss.beta=0",
            "callbacks.model_checkpoint=null",
            *LENGTH_REWARD,
        ]
    )
    train(cfg)
    ratios = [value for _, value in read_scalars(tmp_path / "tensorboard", "loss/ratio")]
    assert len(ratios) == 4
    assert ratios[0] == pytest.approx(1.0, abs=1e-6) and ratios[2] == pytest.approx(1.0, abs=1e-6)  # fresh rollouts
    assert abs(ratios[1] - 1.0) > 1e-4 and abs(ratios[3] - 1.0) > 1e-4  # reused after one update
    rewards = [value for _, value in read_scalars(tmp_path / "tensorboard", "reward/total")]
    assert rewards[1] == rewards[0] and rewards[3] == rewards[2]  # same rollout, same rewards on its reuse step
