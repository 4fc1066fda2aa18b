"""Divergence is named: NaN weights and a temperature too small stop generation with the setting to change, and a
checkpoint of non-finite weights is never written; end to end, a run with optimizer.lr=1e6 stops with the last
good checkpoint on disk."""

from __future__ import annotations

import pytest
import torch

from audio_thinker.checkpoints.atomic_io import AtomicCheckpointIO
from audio_thinker.checkpoints.finite_weights import DivergenceError
from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.format.prompts import THINK
from audio_thinker.models.loading import load_policy
from audio_thinker.models.policy import render_prompts
from audio_thinker.train import train
from tests.helpers.rewards import LENGTH_REWARD


@pytest.fixture
def policy():
    return load_policy("tiny-qwen2-audio")  # a fresh copy: a test here breaks its weights


def _encoding(policy):
    examples = [SyntheticAudioQA(size=2)[i] for i in range(2)]
    return policy.encode_prompts(render_prompts(policy, examples, THINK), [e.audio for e in examples])


SAMPLED = {"do_sample": True, "top_p": 1.0, "top_k": 0, "max_new_tokens": 4}


def test_a_temperature_too_small_for_floats_is_named(policy):
    with pytest.raises(DivergenceError, match=r"temperature of 1e-45 \(rollout.temperature; eval.temperature"):
        policy.generate(_encoding(policy), 2, temperature=1e-45, **SAMPLED)
    assert policy.generate(_encoding(policy), 2, temperature=1e-3, **SAMPLED).shape[0] == 4  # small is fine


def test_diverged_weights_name_the_learning_rate_in_sampling_and_greedy_decoding(policy):
    with torch.no_grad():
        policy.hf_model.get_output_embeddings().weight.fill_(float("nan"))
    with pytest.raises(DivergenceError, match="scores are NaN or infinite .*optimizer.lr is most likely too high"):
        policy.generate(_encoding(policy), 2, temperature=1.0, **SAMPLED)
    with pytest.raises(DivergenceError, match="optimizer.lr"):  # greedy (validation, eval) would not crash: garbage
        policy.generate(_encoding(policy), 1, do_sample=False, max_new_tokens=4)


def test_a_checkpoint_of_non_finite_weights_is_not_written(tmp_path):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 2}, path)
    diverged = {
        "state_dict": {"w": torch.tensor([1.0, float("inf"), 0.0])},
        "global_step": 3,
        "optimizer_states": [{"param_groups": [{"lr": 1e6}]}],
    }
    with pytest.raises(DivergenceError, match=r"step 3: 1 weight tensor\(s\) hold NaN or inf \(w\).*is 1e\+06"):
        AtomicCheckpointIO().save_checkpoint(diverged, path)
    assert AtomicCheckpointIO().load_checkpoint(path)["global_step"] == 2
    assert list(tmp_path.iterdir()) == [path]  # no temporary left either


def test_a_run_with_a_learning_rate_far_too_high_stops_naming_it_and_keeps_finite_checkpoints(train_cfg, tmp_path):
    overrides = ["optimizer.lr=1e6", "trainer.max_steps=6", "validation=null", *LENGTH_REWARD]
    cfg = train_cfg([*overrides, "callbacks.model_checkpoint.every_n_train_steps=1", "callbacks.export=null"])
    with pytest.raises(DivergenceError, match="optimizer.lr"):
        train(cfg)
    written = sorted((tmp_path / "checkpoints").glob("*.ckpt"))
    assert written  # the steps before the divergence were checkpointed
    for path in written:
        state = AtomicCheckpointIO().load_checkpoint(path)["state_dict"]
        assert all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point()), path
