"""The trainer side of streamed weight sync: the policy's weights into a vLLM server through shared memory.

One merged tensor at a time (`merged_weights`) goes into a bucket file in tmpfs; a full bucket is announced to the
server's worker extension over a Unix socket (wire format: `vllm_side/weight_stream_worker.py`), which copies it
out and answers, then the same file is refilled. The trainer never holds more than one tensor plus the bucket;
nothing is written to disk and no checkpoint is made. Names are the checkpoint's (transformers' load-time renaming
reverted, as `save_pretrained` does), since vLLM's `load_weights` reads checkpoint names.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from audio_thinker.rollout.vllm_side.weight_stream_worker import read_lines, send_line

WORKER_DIR = Path(__file__).parent / "vllm_side"  # on the server's PYTHONPATH
WORKER_EXTENSION = "weight_stream_worker.WeightStreamWorker"  # --worker-extension-cls
RPC_METHOD = "receive_weights"


class WeightStreamError(RuntimeError):
    """The server could not take the streamed weights (its reason quoted); its weights are now undefined."""


@dataclass(frozen=True)
class StreamStats:
    """What one sync moved."""

    tensors: int
    bytes: int
    seconds: float


def checkpoint_names(model: nn.Module, names: Iterable[str]) -> dict[str, str]:
    """In-memory name -> checkpoint name (transformers 5 renames some keys at load, `save_pretrained` reverts it)."""
    from transformers.core_model_loading import revert_weight_conversion

    mapping = {}
    for name in names:
        saved = list(revert_weight_conversion(model, {name: torch.empty(0)}))
        if len(saved) != 1:  # a many-to-one converter (fused experts): a tensor alone cannot be renamed
            raise NotImplementedError(f"weight {name!r} is saved converted ({saved}); stream sync cannot rename it")
        mapping[name] = saved[0]
    return mapping


def tied_names(model: nn.Module) -> set[str]:
    """Second names of shared parameters (a tied `lm_head.weight`): the checkpoint and vLLM hold them once."""
    everyone = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    return everyone - {name for name, _ in model.named_parameters()}


def renamed(
    model: nn.Module, weights: Iterable[tuple[str, torch.Tensor]], names: dict[str, str] | None = None
) -> Iterator[tuple[str, torch.Tensor]]:
    """`weights` under their checkpoint names, a tied weight once; `names` caches the renaming between syncs."""
    names = {} if names is None else names
    tied = tied_names(model)
    for name, tensor in weights:
        if name in tied:
            continue
        if name not in names:
            names.update(checkpoint_names(model, [name]))
        yield names[name], tensor


def raw_bytes(tensor: torch.Tensor) -> torch.Tensor:
    """A tensor's bytes as a flat uint8 tensor (bf16 included: a view, no conversion)."""
    flat = tensor.detach().contiguous().view(-1)
    return flat.view(torch.uint8) if flat.numel() else torch.empty(0, dtype=torch.uint8)


class BucketFile:
    """One shared-memory file, grown when a tensor does not fit, mapped once."""

    def __init__(self, path: Path, size: int) -> None:
        self.path, self.size, self.map = path, 0, None
        self.grow(size)

    def grow(self, size: int) -> None:
        if size <= self.size:
            return
        self.close()
        with open(self.path, "a+b") as file:
            file.truncate(size)
            self.map = mmap.mmap(file.fileno(), size)
        self.size = size

    def write(self, offset: int, data: torch.Tensor) -> None:
        """Copy `data` (uint8, any device) to `offset`."""
        if data.numel():
            target = torch.frombuffer(self.map, dtype=torch.uint8, count=data.numel(), offset=offset)
            target.copy_(data)
            del target  # the mapping cannot close while a view of it lives

    def close(self) -> None:
        if self.map is not None:
            self.map.close()
            self.map = None


class RemoteCall:
    """The server's `receive_weights` RPC, running in a thread while this one feeds it."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True, name="weight-stream-rpc")
        self.thread.start()

    def _run(self, call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as error:  # reported by the feeding thread
            self.error = error

    def join(self, timeout_s: float) -> None:
        self.thread.join(timeout_s)
        if self.error is not None:
            raise WeightStreamError(f"the server's {RPC_METHOD} call failed: {self.error}") from self.error
        if self.thread.is_alive():
            raise WeightStreamError(f"the server's {RPC_METHOD} call did not return within {timeout_s:.0f} s")


class WeightStream:
    """Streams weights to a server's worker extension; `send` once per sync, `close` at the end."""

    def __init__(self, bucket_bytes: int, directory: str | None = None, timeout_s: float = 300.0) -> None:
        root = directory or ("/dev/shm" if Path("/dev/shm").is_dir() else None)
        self.dir = Path(tempfile.mkdtemp(prefix="audio-thinker-stream-", dir=root))
        self.bucket = BucketFile(self.dir / "bucket", bucket_bytes)
        self.socket_dir = Path(tempfile.mkdtemp(prefix="at-sync-"))  # a socket path must be < 108 bytes
        self.channel = str(self.socket_dir / "sock")
        self.timeout_s = timeout_s

    def send(self, weights: Iterable[tuple[str, torch.Tensor]], rpc: Callable[[dict], object]) -> StreamStats:
        """Stream `weights`; `rpc(kwargs)` must call the worker's `receive_weights` (blocking until it returns)."""
        start = time.perf_counter()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.channel)
            listener.bind(self.channel)
            listener.listen(1)
            call = RemoteCall(lambda: rpc({"channel": self.channel}))
            conn = self._accept(listener, call)
            with conn:
                replies = read_lines(conn)
                tensors, total = self._feed(weights, conn, replies)
                self._send(conn, {"end": tensors}, replies)
                final = self._reply(replies, "loaded", call)
            call.join(self.timeout_s)
        if final["loaded"] != tensors:
            raise WeightStreamError(f"the server loaded {final['loaded']} of {tensors} streamed tensors")
        return StreamStats(tensors, total, time.perf_counter() - start)

    def _accept(self, listener: socket.socket, call: RemoteCall) -> socket.socket:
        """The worker's connection; the RPC's failure or a timeout if it never comes."""
        listener.settimeout(0.2)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                conn, _ = listener.accept()
                conn.settimeout(self.timeout_s)
                return conn
            if not call.thread.is_alive():
                call.join(0)
                raise WeightStreamError(f"the server returned from {RPC_METHOD} without connecting")
        raise WeightStreamError(
            f"the server's worker did not connect to {self.channel} within {self.timeout_s:.0f} s (is it started "
            f"with --worker-extension-cls {WORKER_EXTENSION}, on this machine?)"
        )

    def _feed(self, weights, conn: socket.socket, replies: Iterator[dict]) -> tuple[int, int]:
        """Fill the bucket tensor by tensor, hand it over whenever the next tensor would not fit; the counts."""
        entries: list[list] = []
        offset = count = total = 0
        for name, tensor in weights:
            data = raw_bytes(tensor)
            if entries and offset + data.numel() > self.bucket.size:
                self._hand_over(entries, conn, replies)
                entries, offset = [], 0
            self.bucket.grow(data.numel())  # a tensor larger than a bucket gets a bucket of its own size
            self.bucket.write(offset, data)
            dtype = str(tensor.dtype).removeprefix("torch.")
            entries.append([name, dtype, list(tensor.shape), offset, data.numel()])
            offset += -(-data.numel() // 64) * 64  # 64-byte aligned, for the server's vectorised copies
            count, total = count + 1, total + data.numel()
            del data, tensor
        if entries:
            self._hand_over(entries, conn, replies)
        return count, total

    def _hand_over(self, entries: list[list], conn: socket.socket, replies: Iterator[dict]) -> None:
        """Announce a full bucket and wait until the server has copied it out."""
        self._send(conn, {"buffer": str(self.bucket.path), "tensors": entries}, replies)
        self._reply(replies, "done", None)

    def _send(self, conn: socket.socket, message: dict, replies: Iterator[dict]) -> None:
        """Send `message`; a server that hung up has said why first (its error line is still to be read)."""
        try:
            send_line(conn, message)
        except OSError:
            self._reply(replies, "<the server hung up>", None)

    def _reply(self, replies: Iterator[dict], key: str, call: RemoteCall | None) -> dict:
        """The server's next message, which must carry `key`; its error, or its silence, raised by name."""
        try:
            message = next(replies)
        except (StopIteration, OSError) as error:
            if call is not None:
                call.join(self.timeout_s)
            reason = "timed out" if isinstance(error, TimeoutError) else "closed the connection"
            raise WeightStreamError(f"the server {reason} while loading streamed weights") from None
        if "error" in message:
            raise WeightStreamError(f"the server failed loading streamed weights: {message['error']}")
        if key not in message:
            raise WeightStreamError(f"the server answered {message}, expected {key!r}")
        return message

    def close(self) -> None:
        self.bucket.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.socket_dir, ignore_errors=True)
