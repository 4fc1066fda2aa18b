"""The server side of streamed weight sync: a vLLM worker extension that reloads weights from shared memory.

Runs inside vLLM's environment (`--worker-extension-cls weight_stream_worker.WeightStreamWorker`), so it imports
only the standard library and torch; the trainer imports it too, for the wire format below, which is the same
whatever torch each side runs: raw bytes, dtype names and shapes.

A sync is one `/collective_rpc` call of `receive_weights(channel=<unix socket path>)`. The worker connects to the
trainer's socket and reads one JSON line per bucket: `{"buffer": <file>, "tensors": [[name, dtype, shape, offset,
nbytes], ...]}`. The tensors' bytes lie in that file (tmpfs, /dev/shm), which the trainer refills bucket after
bucket: the worker copies a bucket's tensors out (onto its device), answers `{"done": n}`, and hands them to
vLLM's `reload_weights` iterator while the trainer fills the next one. `{"end": count}` closes the stream; the
worker answers `{"loaded": count, "bytes": total}`, or `{"error": text}` when loading failed (then it raises, so
the RPC fails too and the server's log has the traceback).
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import socket
from collections.abc import Iterator

import torch


def send_line(conn: socket.socket, message: dict) -> None:
    """One JSON message, newline-terminated."""
    conn.sendall(json.dumps(message).encode() + b"\n")


def read_lines(conn: socket.socket) -> Iterator[dict]:
    """The JSON messages arriving on `conn`, until the peer closes it."""
    pending = b""
    while chunk := conn.recv(1 << 16):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield json.loads(line)


def dtype_named(name: str) -> torch.dtype:
    """torch.bfloat16 for "bfloat16": the wire carries dtype names, never pickled torch objects."""
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r} in a weight bucket")
    return dtype


class MappedFile:
    """A shared-memory file mapped read-write; remapped when the other side has grown it."""

    def __init__(self, path: str) -> None:
        self.path, self.map, self.size = path, None, 0

    def view(self, size: int) -> mmap.mmap:
        """The mapping, at least `size` bytes long."""
        if self.map is None or self.size < size:
            self.close()
            with open(self.path, "r+b") as file:
                self.size = os.fstat(file.fileno()).st_size
                self.map = mmap.mmap(file.fileno(), self.size)
        return self.map

    def close(self) -> None:
        if self.map is not None:
            self.map.close()
            self.map = None


def bucket_tensors(mapped: mmap.mmap, entries: list, device: torch.device) -> list[tuple[str, torch.Tensor]]:
    """A bucket's tensors copied out of the buffer onto `device`, so the buffer can be refilled at once.

    A copy, not a view: vLLM's layer-by-layer reload keeps a layer's weights until its last one arrives.
    """
    tensors = []
    for name, dtype, shape, offset, nbytes in entries:
        raw = torch.frombuffer(mapped, dtype=torch.uint8, count=nbytes, offset=offset) if nbytes else None
        empty = torch.empty(0, dtype=torch.uint8)
        value = (raw if raw is not None else empty).view(dtype_named(dtype)).reshape(shape)
        tensors.append((name, value.to(device, copy=True)))
        del raw, value  # the mapping cannot close while a view of it lives
    return tensors


def received_weights(conn: socket.socket, device: torch.device, totals: dict) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) bucket after bucket as the trainer sends them; `totals` counts tensors and bytes."""
    buffers: dict[str, MappedFile] = {}
    try:
        for message in read_lines(conn):
            if "end" in message:
                if message["end"] != totals["tensors"]:
                    raise ValueError(f"the trainer sent {message['end']} tensors, {totals['tensors']} arrived")
                return
            entries = message["tensors"]
            size = max((offset + nbytes for *_, offset, nbytes in entries), default=0)
            mapped = buffers.setdefault(message["buffer"], MappedFile(message["buffer"])).view(size)
            tensors = bucket_tensors(mapped, entries, device)
            send_line(conn, {"done": len(tensors)})
            totals["tensors"] += len(tensors)
            totals["bytes"] += sum(entry[4] for entry in entries)
            yield from tensors
        raise ConnectionError("the trainer closed the weight stream before its end")
    finally:
        for mapped in buffers.values():
            mapped.close()


class WeightStreamWorker:
    """Mixed into vLLM's worker class: `receive_weights` is callable over `/collective_rpc`."""

    def receive_weights(self, channel: str) -> dict:
        """Reload every weight the trainer streams through `channel`; the counts, or raise (named to the trainer)."""
        totals = {"tensors": 0, "bytes": 0}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(channel)
            try:
                self.reload_weights(weights_iterator=received_weights(conn, self.device, totals))
            except BaseException as error:
                with contextlib.suppress(OSError):  # the trainer may be gone: then the RPC's error is the report
                    send_line(conn, {"error": f"{type(error).__name__}: {error}"})
                raise
            send_line(conn, {"loaded": totals["tensors"], "bytes": totals["bytes"]})
        return totals
