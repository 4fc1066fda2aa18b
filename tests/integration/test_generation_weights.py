"""`rollout.generation_weights=merged` trains a LoRA run end to end through `train`: the copy is built at the first
sync, refreshed to the updated weights at every later one, and every rollout decodes on it."""

from __future__ import annotations

import torch

from audio_thinker.models.policy import Policy
from audio_thinker.rollout.generation_copy import GenerationCopy
from audio_thinker.rollout.merged_weights import merged_weights
from audio_thinker.train import train
from tests.helpers.rewards import LENGTH_REWARD

ADAPTED = "model.language_model.layers.0.self_attn.q_proj.weight"  # a LoRA-adapted weight of the audio model


def test_a_lora_run_samples_every_rollout_from_the_refreshed_merged_copy(train_cfg, monkeypatch):
    events: list[str] = []
    seen: list[torch.Tensor] = []  # the copy's adapted weight after each build or refresh
    build, refresh, generate = GenerationCopy.__init__, GenerationCopy.refresh, Policy.generate

    def record(copy: GenerationCopy, policy: Policy) -> None:
        want = dict(merged_weights(policy.hf_model))[ADAPTED]
        got = copy.params[copy.copy_name(ADAPTED)]
        assert torch.allclose(got, want.to(got.dtype), atol=1e-6)  # the policy's current weights, merged
        seen.append(got.detach().clone())

    def spy_build(self, policy, dtype=None):
        build(self, policy, dtype)
        events.append("build")
        record(self, policy)

    def spy_refresh(self, policy):
        refreshed = refresh(self, policy)
        events.append("refresh")
        record(self, policy)
        return refreshed

    def spy_generate(self, encoding, group_size, lm=None, **kwargs):
        if lm is not None:  # validation generates on the policy itself: only rollouts pass a copy
            events.append("generate on copy")
        return generate(self, encoding, group_size, lm=lm, **kwargs)

    monkeypatch.setattr(GenerationCopy, "__init__", spy_build)
    monkeypatch.setattr(GenerationCopy, "refresh", spy_refresh)
    monkeypatch.setattr(Policy, "generate", spy_generate)
    overrides = ["quant=lora", "rollout.generation_weights=merged", "optimizer.lr=1e-2", "trainer.max_steps=3"]
    train(train_cfg([*overrides, "callbacks.model_checkpoint=null", *LENGTH_REWARD]))
    assert events == ["build", "generate on copy", "refresh", "generate on copy", "refresh", "generate on copy"]
    assert not torch.equal(seen[0], seen[-1])  # the updates reached the copy
