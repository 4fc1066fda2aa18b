"""`train` starts its own vLLM server before the policy loads (`rollout/server_start.py`), against fake servers."""

from __future__ import annotations

import json
import os

import pytest
from omegaconf import DictConfig, OmegaConf

from audio_thinker import train as train_module
from audio_thinker.models.loading import load_policy
from audio_thinker.rollout import server_start, vllm_engine
from audio_thinker.rollout.server_start import served_dtype_name, start_rollout_server, starts_early, write_config_files
from audio_thinker.rollout.weight_sync import write_model_files
from audio_thinker.train import train
from tests.helpers.fake_vllm_server import FakeVLLM

ONE_STEP = ["rollout.engine=vllm", "trainer.max_steps=1", "validation=null", "callbacks.model_checkpoint=null"]


def run_config(engine: str = "vllm", devices=1, **server) -> DictConfig:
    """The keys `starts_early` reads."""
    rollout = {"engine": engine, "server": {"url": None, "weight_sync": "stream", **server}}
    return OmegaConf.create({"rollout": rollout, "trainer": {"devices": devices, "num_nodes": 1}})


def test_only_our_own_streamed_server_of_a_one_device_run_starts_before_the_policy():
    assert starts_early(run_config())
    assert starts_early(run_config(devices=[0]))
    assert not starts_early(run_config(engine="hf"))
    assert not starts_early(run_config(url="http://127.0.0.1:8000"))  # not ours: reached at the first sync
    assert not starts_early(run_config(weight_sync="files"))  # starts from the policy's saved weights
    assert not starts_early(run_config(devices=2))  # ranks launched later start their own
    assert start_rollout_server(run_config(weight_sync="files")) is None  # nothing started


def test_served_dtype_from_the_config_is_the_one_served_from_the_policy():
    assert served_dtype_name(OmegaConf.create({"dtype": "auto", "quantization": None}), "cpu") == "float32"
    assert served_dtype_name(OmegaConf.create({"dtype": "float16"}), "cpu") == "float16"
    nf4 = {"dtype": "float32", "quantization": {"load_in_4bit": True}}
    assert served_dtype_name(OmegaConf.create(nf4), "cpu") == "bfloat16"  # a 4-bit base is served dequantised


@pytest.mark.parametrize("name", ["tiny-qwen2-audio", "tiny-qwen2"])
def test_files_written_from_the_config_are_those_of_the_loaded_policy(name, tmp_path):
    from_policy = write_model_files(load_policy(name), tmp_path / "policy")
    from_config = write_config_files(OmegaConf.create({"path": name}), tmp_path / "config", "float32")
    names = sorted(path.name for path in from_policy.iterdir())
    assert names == sorted(path.name for path in from_config.iterdir())
    for file in names:
        ours, theirs = (
            json.loads(p.read_text()) if p.suffix == ".json" else p.read_text()
            for p in (from_config / file, from_policy / file)
        )
        if file == "config.json":  # the loaded model's sub-configs also name their dtype; vLLM reads the top one
            for sub in ("text_config", "audio_config"):
                theirs.get(sub, {}).pop("dtype", None)
        assert ours == theirs, file


def test_an_omni_model_is_refused_before_it_loads(tmp_path):
    with pytest.raises(ValueError, match="does not support Qwen2.5-Omni"):
        write_config_files(OmegaConf.create({"path": "tiny-qwen2_5-omni"}), tmp_path, "float32")
    assert not list(tmp_path.iterdir())


@pytest.fixture
def events(monkeypatch) -> list:
    """What happens, in order: our server started / answered health / was given weights / stopped, the policy
    built. The server is the fake in a thread (it receives streamed weights), in place of the vLLM process."""
    happened: list = []

    class StreamReceiver(FakeVLLM):
        def receive_weights(self, channel: str) -> dict:
            happened.append("weights streamed")
            return super().receive_weights(channel)

    class ThreadServer:
        """`ServerProcess` as the engine uses it, serving the directory it was started on."""

        def __init__(self, model_dir, settings, log_path, dtype="auto", dummy_weights=False, on_gpu=False) -> None:
            self.fake = StreamReceiver(str(model_dir)).start()
            self.url, self.log_path, self.on_gpu, self.sleep_mode = self.fake.url, log_path, on_gpu, False
            self.process = type("Process", (), {"pid": os.getpid(), "returncode": None})()
            self.stopped = self.healthy = False
            happened.append(("server started", dtype, dummy_weights, on_gpu, sorted(os.listdir(model_dir))))

        def wait_healthy(self, timeout_s: float) -> None:
            if not self.healthy:  # as the real one, which returns at once once it answered
                happened.append("health waited")
                self.healthy = True

        def alive(self) -> bool:
            return not self.stopped

        def stop(self) -> None:
            if not self.stopped:
                self.fake.stop()
                self.stopped = True
                happened.append("server stopped")

    build_module = train_module.build_module

    def recorded_build_module(cfg):
        module = build_module(cfg)
        happened.append("policy built")
        return module

    monkeypatch.setattr(vllm_engine, "ServerProcess", ThreadServer)
    monkeypatch.setattr(train_module, "build_module", recorded_build_module)
    return happened


def test_train_starts_the_server_before_the_policy_and_streams_at_the_first_sync(events, train_cfg):
    train(train_cfg(ONE_STEP))
    started, *rest = events
    assert started[:4] == ("server started", "float32", True, False)  # dummy weights, the policy's dtype, a CPU
    assert "config.json" in started[4] and "tokenizer.json" in started[4]
    assert rest == ["policy built", "health waited", "weights streamed", "server stopped"]


def test_on_a_gpu_the_server_is_ready_before_the_policy_takes_any_memory(events, train_cfg, monkeypatch):
    monkeypatch.setattr(server_start, "on_gpu", lambda accelerator: True)  # the server's side only: trains on a CPU
    with pytest.raises(ValueError, match="rollout.server.gpu_memory_utilization is null: set vLLM's share"):
        train(train_cfg(ONE_STEP))  # vLLM's own 0.9 would leave the policy, loaded after it, a tenth of the card
    assert events == []  # refused before anything started
    train(train_cfg([*ONE_STEP, "rollout.server.gpu_memory_utilization=0.3"]))
    started, *rest = events
    assert started[3] is True  # started with the GPU flags (sleep mode, memory share)
    assert rest == ["health waited", "policy built", "weights streamed", "server stopped"]


def test_with_file_sync_the_server_still_starts_at_the_first_sync_from_the_saved_policy(events, train_cfg):
    train(train_cfg([*ONE_STEP, "rollout.server.weight_sync=files"]))
    built, started, *rest = events
    assert built == "policy built" and started[0] == "server started" and "model.safetensors" in started[4]
    assert rest == ["health waited", "server stopped"]  # its first sync is the start itself


@pytest.mark.parametrize("failure", [RuntimeError("the policy failed to load"), KeyboardInterrupt()])
def test_a_failure_while_the_policy_loads_stops_the_server(failure, fake_venv, train_cfg, monkeypatch):
    """The real process (the fake vLLM in a venv): nothing of its process group outlives the failure."""
    servers = []
    start_server = vllm_engine.VLLMEngine.start_server
    monkeypatch.setattr(
        vllm_engine.VLLMEngine, "start_server", lambda self, *a: servers.append(start_server(self, *a)) or servers[-1]
    )

    def failing_build_module(cfg):
        assert servers and servers[0].alive()  # started before the policy
        raise failure

    monkeypatch.setattr(train_module, "build_module", failing_build_module)
    cfg = train_cfg(["rollout.engine=vllm", f"rollout.server.venv={fake_venv}"])
    with pytest.raises(type(failure)):
        train(cfg)
    (server,) = servers
    assert not server.alive()
    with pytest.raises(ProcessLookupError):
        os.killpg(server.process.pid, 0)  # nothing of its process group is left
