"""The server's lifecycle, with a fake vLLM installed in a real venv: start, health, stop, crashes, timeouts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.format.prompts import DIRECT
from audio_thinker.models.loading import load_policy
from audio_thinker.rollout.engine import SamplingSettings
from audio_thinker.rollout.sampler import sample_rollout
from audio_thinker.rollout.server import ServerProcess, ServerSettings, free_port, rollout_server_main
from audio_thinker.rollout.vllm_engine import ServerError, VLLMEngine
from tests.helpers.fake_vllm_server import FakeVLLM


def start(fake_venv: Path, tmp_path: Path, **settings) -> ServerProcess:
    config = ServerSettings(venv=str(fake_venv), **settings)
    return ServerProcess(tmp_path, config, tmp_path / "server.log")


def test_our_server_starts_answers_and_stops_with_its_process_group(fake_venv, tmp_path):
    server = start(fake_venv, tmp_path)
    server.wait_healthy(60)
    assert httpx.get(f"{server.url}/v1/models").json()["data"][0]["root"] == str(tmp_path)
    server.stop()
    assert not server.alive()
    with pytest.raises(ProcessLookupError):
        os.killpg(server.process.pid, 0)  # nothing of its group is left
    assert "--dtype auto" in (tmp_path / "server.log").read_text()


def test_a_server_that_exits_while_starting_is_reported_with_its_log(fake_venv, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_EXIT", "3")
    server = start(fake_venv, tmp_path)
    with pytest.raises(
        RuntimeError,
        match=r"exited with code 3 while starting; its log .*server.log ends with:\n"
        r"(.|\n)*failing at start on purpose",
    ):
        server.wait_healthy(60)


def test_a_server_that_never_becomes_healthy_is_killed_at_the_timeout(fake_venv, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_START_DELAY", "60")
    server = start(fake_venv, tmp_path)
    begin = time.monotonic()
    with pytest.raises(TimeoutError, match=r"not become healthy within 3 s \(rollout.server.startup_timeout_s\)"):
        server.wait_healthy(3)
    assert time.monotonic() - begin < 30 and not server.alive()


def test_waiting_for_a_starting_server_is_logged_with_its_last_log_line(fake_venv, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FAKE_VLLM_START_DELAY", "60")
    server = start(fake_venv, tmp_path)
    with caplog.at_level("INFO", logger="audio_thinker.rollout.server"), pytest.raises(TimeoutError):
        server.wait_healthy(2.5, report_every_s=1)
    lines = [r.getMessage() for r in caplog.records if "is starting" in r.getMessage()]
    assert len(lines) == 2 and lines[0].startswith("the vLLM server is starting (1 s so far); its log: ")


def test_the_server_dies_with_the_trainer_even_when_it_is_killed(fake_venv, tmp_path):
    """SIGKILL leaves no atexit: the parent-death signal still takes the server down."""
    script = textwrap.dedent(f"""
        from pathlib import Path
        from audio_thinker.rollout.server import ServerProcess, ServerSettings
        server = ServerProcess(Path({str(tmp_path)!r}), ServerSettings(venv={str(fake_venv)!r}),
                               Path({str(tmp_path / "server.log")!r}))
        server.wait_healthy(60)
        print(server.process.pid, flush=True)
        import time; time.sleep(600)
    """)
    trainer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    server_pid = int(trainer.stdout.readline())
    os.kill(trainer.pid, signal.SIGKILL)
    trainer.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _running(server_pid):
        time.sleep(0.2)
    assert not _running(server_pid)


def _running(pid: int) -> bool:
    """Whether `pid` is alive (a zombie waiting for its new parent to reap it counts as dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_own_server_killed_mid_run_stops_training_with_the_log_named(fake_venv, tmp_path):
    policy = load_policy("tiny-qwen2")
    # files: the fake server runs without torch (streamed sync against the fake: test_vllm_engine.py)
    engine = VLLMEngine(ServerSettings(venv=str(fake_venv), weights_dir=str(tmp_path), retries=3, weight_sync="files"))
    examples = [SyntheticAudioQA(size=1)[0]]
    sampling = SamplingSettings(max_new_tokens=3)
    try:
        engine.sync_weights(policy)  # starts the server from the policy's weights
        assert sample_rollout(policy, examples, DIRECT, 2, sampling, engine).completion_ids.shape == (2, 3)
        os.killpg(engine.server.process.pid, signal.SIGKILL)
        engine.server.process.wait()
        begin = time.monotonic()
        with pytest.raises(ServerError, match=r"process exited with code -9\. Resume with ckpt_path=last\. Its log "):
            sample_rollout(policy, examples, DIRECT, 2, sampling, engine)
        assert time.monotonic() - begin < 10  # a dead server is not retried
    finally:
        engine.close()
    assert not list(Path(tmp_path).glob("*/weights-*"))  # synced weights are cleaned up


def test_missing_environment_names_the_setup_command(tmp_path):
    with pytest.raises(RuntimeError, match=r"audio-thinker rollout-server --setup"):
        ServerProcess(tmp_path, ServerSettings(venv=str(tmp_path / "nothing")), tmp_path / "server.log")


def test_health_command_reports_the_served_model(tmp_path, capsys):
    fake = FakeVLLM(str(tmp_path)).start()
    try:
        assert rollout_server_main(["health", "--url", fake.url]) == 0
        assert f"healthy: {tmp_path} at {fake.url}" in capsys.readouterr().out
    finally:
        fake.stop()
    assert rollout_server_main(["health", "--url", fake.url]) == 1
    assert "not healthy" in capsys.readouterr().err


def test_start_serves_in_the_foreground_until_stop(fake_venv, tmp_path):
    env = {**os.environ, "AUDIO_THINKER_VLLM_VENV": str(fake_venv)}  # also where the pid file goes (its parent)
    port = str(free_port())
    cmd = [
        sys.executable,
        "-m",
        "audio_thinker.cli",
        "rollout-server",
        "start",
        "--model",
        str(tmp_path),
        "--port",
        port,
        "--log",
        str(tmp_path / "server.log"),
    ]
    serving = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = [serving.stdout.readline() for _ in range(2)]
        assert lines[1].startswith(f"ready: http://127.0.0.1:{port}"), lines
        stop = subprocess.run([*cmd[:4], "stop", "--port", port], env=env, capture_output=True, text=True)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert serving.wait(30) == 0
    finally:
        serving.kill()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health")


@pytest.mark.parametrize("flags", [["--tensor-parallel-size", "2"], ["-tp=2"], ["--pipeline-parallel-size", "4"]])
def test_the_streamed_sync_refuses_several_workers(flags):
    with pytest.raises(ValueError, match="streamed weight sync has one receiving worker"):
        ServerSettings.from_config({"extra_args": flags})
    assert ServerSettings.from_config({"extra_args": flags, "weight_sync": "files"}).extra_args == flags
    assert ServerSettings.from_config({"extra_args": ["--tensor-parallel-size", "1"]})  # one worker: fine
