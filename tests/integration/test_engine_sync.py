"""The rollout callback syncs an engine's weights before every generation that follows an update, and a resumed
run syncs the restored weights before its first rollout."""

from __future__ import annotations

import pytest
import torch

from audio_thinker.rollout.engine import ENGINES, HFEngine
from audio_thinker.train import train
from tests.integration.test_training import LENGTH_REWARD


class SpyEngine(HFEngine):
    """The hf engine, recording each sync and generation with a fingerprint of the weights it saw then."""

    events: list[tuple[str, float]] = []

    def sync_weights(self, policy) -> None:
        SpyEngine.events.append(("sync", fingerprint(policy)))

    def generate(self, policy, request):
        SpyEngine.events.append(("generate", fingerprint(policy)))
        return super().generate(policy, request)


def fingerprint(policy) -> float:
    return float(sum(p.detach().double().sum() for p in policy.parameters() if p.requires_grad))


ENGINES["spy"] = SpyEngine


def test_weights_are_synced_before_each_generation_and_again_after_a_resume(train_cfg):
    common = ["rollout.engine=spy", "optimizer.lr=1e-2", "callbacks.model_checkpoint.every_n_train_steps=1",
              *LENGTH_REWARD]  # fmt: skip
    SpyEngine.events = []
    train(train_cfg([*common, "trainer.max_steps=2"]))
    first = SpyEngine.events
    assert [kind for kind, _ in first] == ["sync", "generate"] * 2
    assert first[0][1] != first[2][1]  # the second sync carried the updated weights
    last = torch.load(f"{train_cfg().hydra.runtime.output_dir}/checkpoints/last.ckpt", weights_only=True)
    saved = float(sum(v.double().sum() for k, v in last["state_dict"].items() if k.startswith("policy.")))
    SpyEngine.events = []
    train(train_cfg([*common, "trainer.max_steps=3", "ckpt_path=last"]))
    resumed = SpyEngine.events
    assert [kind for kind, _ in resumed] == ["sync", "generate"]
    assert resumed[0][1] == pytest.approx(saved, rel=1e-12)  # the restored weights (step 2), before sampling
