"""The rollout callback syncs an engine's weights before every generation that follows an update, and a resumed
run syncs the restored weights before its first rollout."""

from __future__ import annotations

import pytest
import torch

from audio_thinker.rollout.engine import HFEngine
from audio_thinker.rollout.engine_registry import ENGINES
from audio_thinker.train import train
from tests.helpers.rewards import LENGTH_REWARD


class SpyEngine(HFEngine):
    """The hf engine, recording each sync and generation with a fingerprint of the weights it saw then."""

    events: list[tuple[str, float]] = []
    fail = False  # generate raises, as a server engine does when its server is gone

    def sync_weights(self, policy) -> None:
        SpyEngine.events.append(("sync", fingerprint(policy)))

    def generate(self, policy, request):
        SpyEngine.events.append(("generate", fingerprint(policy)))
        if SpyEngine.fail:
            raise RuntimeError("the server is gone")
        return super().generate(policy, request)

    def close(self) -> None:
        SpyEngine.events.append(("close", 0.0))


def fingerprint(policy) -> float:
    return float(sum(p.detach().double().sum() for p in policy.parameters() if p.requires_grad))


@pytest.fixture(autouse=True)
def spy_engine(monkeypatch):
    """`rollout.engine=spy` in this module's runs only (the registry is the package's, shared by every test)."""
    monkeypatch.setitem(ENGINES, "spy", SpyEngine)


def test_weights_are_synced_before_each_generation_and_again_after_a_resume(train_cfg):
    common = [
        "rollout.engine=spy",
        "optimizer.lr=1e-2",
        "callbacks.model_checkpoint.every_n_train_steps=1",
        *LENGTH_REWARD,
    ]
    SpyEngine.events = []
    train(train_cfg([*common, "trainer.max_steps=2"]))
    first = SpyEngine.events
    assert [kind for kind, _ in first] == ["sync", "generate"] * 2 + ["close"]
    assert first[0][1] != first[2][1]  # the second sync carried the updated weights
    last = torch.load(f"{train_cfg().hydra.runtime.output_dir}/checkpoints/last.ckpt", weights_only=True)
    saved = float(sum(v.double().sum() for k, v in last["state_dict"].items() if k.startswith("policy.")))
    SpyEngine.events = []
    train(train_cfg([*common, "trainer.max_steps=3", "ckpt_path=last"]))
    resumed = SpyEngine.events
    assert [kind for kind, _ in resumed] == ["sync", "generate", "close"]
    assert resumed[0][1] == pytest.approx(saved, rel=1e-12)  # the restored weights (step 2), before sampling


def test_a_failing_engine_stops_the_run_and_is_closed(train_cfg):
    SpyEngine.events, SpyEngine.fail = [], True
    try:
        with pytest.raises(RuntimeError, match="the server is gone"):
            train(train_cfg(["rollout.engine=spy", "callbacks.model_checkpoint=null"]))
    finally:
        SpyEngine.fail = False
    assert [kind for kind, _ in SpyEngine.events] == ["sync", "generate", "close"]
