"""How the policy's weights reach a vLLM server (`rollout.server.weight_sync`): streamed, or through files.

`stream` (the default): the server starts from the model's config and processor files alone (`--load-format
dummy`: no checkpoint is written, ever), and every sync streams the weights through shared memory into vLLM's
`reload_weights` (`weight_stream.py`): one tensor at a time, LoRA merged, NF4 dequantised to bfloat16.
`files`: the whole model is written with `save_pretrained` into tmpfs at each sync and reloaded from there (the
way before streaming; kept to compare against, and for a server that cannot reach this machine's shared memory).
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

import torch

from audio_thinker.models.policy import Policy
from audio_thinker.rollout.merged_weights import merged_weights, save_merged
from audio_thinker.rollout.weight_stream import RPC_METHOD, StreamStats, WeightStream, renamed

MIB = 1 << 20


class Caller(Protocol):
    """The server calls a sync makes (`VLLMClient`)."""

    def call(self, method: str, path: str, body: dict | None = None, check=None): ...

    def call_once(self, method: str, path: str, body: dict | None = None): ...


def is_quantized(policy: Policy) -> bool:
    model = policy.hf_model
    return bool(getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False))


def served_dtype(policy: Policy) -> torch.dtype:
    """The dtype the server runs: the policy's, or bfloat16 for a quantized base (served dequantised)."""
    if is_quantized(policy):
        return torch.bfloat16
    return next(p.dtype for p in policy.hf_model.parameters() if p.dtype.is_floating_point)


def tmpfs_dir(parent: str | None, prefix: str) -> Path:
    """A fresh directory under `parent`, else /dev/shm (RAM-backed) when there is one."""
    root = parent or ("/dev/shm" if Path("/dev/shm").is_dir() else None)
    if root:
        Path(root).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


def dtype_name(dtype: torch.dtype) -> str:
    """`torch.bfloat16` as vLLM's `--dtype` names it: bfloat16."""
    return str(dtype).removeprefix("torch.")


def write_served_files(path: Path, config, generation_config, processor, dtype: str) -> Path:
    """Config, generation config and processor: all vLLM needs to start with dummy weights (no checkpoint)."""
    config.save_pretrained(path)
    served = json.loads((path / "config.json").read_text())
    served.pop("quantization_config", None)  # served dequantised: vLLM must not look for 4-bit weights
    served["dtype"] = dtype
    (path / "config.json").write_text(json.dumps(served, indent=2))
    if generation_config is not None:
        generation_config.save_pretrained(path)  # vLLM reads its defaults, as from a saved checkpoint
    processor.save_pretrained(path)
    return path


def write_model_files(policy: Policy, path: Path) -> Path:
    """The served files of a loaded policy (`write_served_files`)."""
    model = policy.hf_model
    generation_config = getattr(model, "generation_config", None)
    return write_served_files(path, model.config, generation_config, policy.processor, dtype_name(served_dtype(policy)))


class WeightSync:
    """One way of syncing: the directory the server starts from, then `sync` after every update."""

    starts_with_weights: bool  # whether the start directory already holds the current weights

    def __init__(self, parent: str | None, bucket_mib: int, timeout_s: float) -> None:
        self.root = tmpfs_dir(parent, "audio-thinker-vllm-")
        self.bucket_mib, self.timeout_s = bucket_mib, timeout_s
        atexit.register(self.close)  # a 7B model's files hold ~15 GB of /dev/shm (that is, of RAM)

    def start_dir(self, policy: Policy) -> Path:
        raise NotImplementedError

    def sync(self, policy: Policy, client: Caller) -> StreamStats | None:
        raise NotImplementedError

    def close(self) -> None:
        atexit.unregister(self.close)
        shutil.rmtree(self.root, ignore_errors=True)


class StreamSync(WeightSync):
    """Weights streamed through shared memory; the server starts from model files and dummy weights."""

    starts_with_weights = False

    def __init__(self, parent: str | None, bucket_mib: int, timeout_s: float) -> None:
        super().__init__(parent, bucket_mib, timeout_s)
        self.stream = WeightStream(bucket_mib * MIB, str(self.root), timeout_s)
        self.names: dict[str, str] = {}  # checkpoint names, worked out at the first sync

    @property
    def model_dir(self) -> Path:
        """Where the server's config and processor files go (written from the policy, or from its config)."""
        return self.root / "model"

    def start_dir(self, policy: Policy) -> Path:
        return write_model_files(policy, self.model_dir)

    def sync(self, policy: Policy, client: Caller) -> StreamStats:
        model = policy.hf_model
        weights = renamed(model, merged_weights(model, served_dtype(policy)), self.names)
        rpc = {"method": RPC_METHOD, "timeout": self.timeout_s}
        return self.stream.send(
            weights, lambda kwargs: client.call_once("POST", "/collective_rpc", rpc | {"kwargs": kwargs})
        )

    def close(self) -> None:
        self.stream.close()
        super().close()


class FileSync(WeightSync):
    """The whole model written with `save_pretrained` per sync and reloaded from its directory."""

    starts_with_weights = True

    def __init__(self, parent: str | None, bucket_mib: int, timeout_s: float) -> None:
        super().__init__(parent, bucket_mib, timeout_s)
        self.count = 0

    def start_dir(self, policy: Policy) -> Path:
        return self._write(policy)

    def sync(self, policy: Policy, client: Caller) -> None:
        path = self._write(policy)
        client.call("POST", "/collective_rpc", {"method": "reload_weights", "kwargs": {"weights_path": str(path)}})

    def _write(self, policy: Policy) -> Path:
        """The policy's current weights (LoRA merged) in a fresh directory; older ones are removed."""
        if is_quantized(policy):
            raise ValueError(
                "rollout.server.weight_sync=files cannot write a quantized (quant=qlora_nf4) policy: use "
                "weight_sync=stream, which serves its dequantised bfloat16 weights"
            )
        self.count += 1
        path = self.root / f"weights-{self.count:06d}"
        save_merged(policy, path, with_processor=self.count == 1)
        for old in self.root.glob("weights-*"):
            if old != path and old.name != "weights-000001":  # the first one is the server's --model directory
                shutil.rmtree(old, ignore_errors=True)
        return path


SYNCS: dict[str, type[WeightSync]] = {"stream": StreamSync, "files": FileSync}


def build_weight_sync(name: str, parent: str | None, bucket_mib: int, timeout_s: float) -> WeightSync:
    """The `rollout.server.weight_sync` strategy."""
    if name not in SYNCS:
        raise ValueError(f"rollout.server.weight_sync must be one of {sorted(SYNCS)}; got {name!r}")
    return SYNCS[name](parent, bucket_mib, timeout_s)
