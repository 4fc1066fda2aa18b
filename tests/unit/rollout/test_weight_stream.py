"""Streamed weight sync, both sides in this process: the trainer's `WeightStream` feeding the worker extension that
runs inside vLLM, with a stand-in for vLLM's `reload_weights` (the real server: tests/integration/test_vllm.py)."""

from __future__ import annotations

import threading

import pytest
import torch

from audio_thinker.models.loading import load_policy
from audio_thinker.rollout.merged_weights import merged_weights
from audio_thinker.rollout.vllm_side.weight_stream_worker import WeightStreamWorker
from audio_thinker.rollout.weight_stream import WeightStream, WeightStreamError, checkpoint_names, renamed


class FakeWorker(WeightStreamWorker):
    """vLLM's worker as far as the extension sees it: a device and a `reload_weights` that consumes the iterator."""

    device = torch.device("cpu")

    def __init__(self, fail_on: str | None = None, stop_after: int | None = None) -> None:
        self.loaded: dict[str, torch.Tensor] = {}
        self.fail_on, self.stop_after = fail_on, stop_after

    def reload_weights(self, weights_iterator) -> None:
        for name, tensor in weights_iterator:
            if name == self.fail_on:
                raise KeyError(f"no parameter named {name}")
            self.loaded[name] = tensor
            if self.stop_after is not None and len(self.loaded) == self.stop_after:
                raise RuntimeError("engine died")


def stream(weights, worker: FakeWorker, bucket_bytes: int = 1024, timeout_s: float = 10.0):
    sender = WeightStream(bucket_bytes, timeout_s=timeout_s)
    try:
        return sender.send(weights, lambda kwargs: worker.receive_weights(**kwargs))
    finally:
        sender.close()


WEIGHTS = {
    "embed.weight": torch.randn(64, 16, dtype=torch.bfloat16),  # 2 KiB: larger than a 1 KiB bucket
    "norm.weight": torch.rand(16),
    "norm.bias": torch.zeros(0),
    "scale": torch.tensor(3.5, dtype=torch.float16),
    "positions": torch.arange(10),
    "mask": torch.tensor([True, False, True]),
    "strided": torch.randn(8, 6)[:, ::2],  # not contiguous
}


def test_every_tensor_arrives_bit_for_bit_in_dtype_and_shape():
    worker = FakeWorker()
    stats = stream(WEIGHTS.items(), worker)
    assert list(worker.loaded) == list(WEIGHTS)
    for name, tensor in WEIGHTS.items():
        got = worker.loaded[name]
        assert got.dtype == tensor.dtype and got.shape == tensor.shape and torch.equal(got, tensor), name
    assert stats.tensors == len(WEIGHTS) and stats.bytes == sum(t.numel() * t.element_size() for t in WEIGHTS.values())


def test_the_bucket_is_refilled_so_received_tensors_must_be_copies():
    weights = [(f"w{i}", torch.full((100,), float(i))) for i in range(12)]  # 400 B each: 2 per 1 KiB bucket
    worker = FakeWorker()
    stream(weights, worker)
    assert all(torch.equal(worker.loaded[name], tensor) for name, tensor in weights)


def test_a_policy_streams_under_its_checkpoint_names():
    policy = load_policy("tiny-qwen2-audio")
    worker = FakeWorker()
    stream(renamed(policy.hf_model, merged_weights(policy.hf_model)), worker, bucket_bytes=1 << 16)
    state = dict(merged_weights(policy.hf_model))
    names = checkpoint_names(policy.hf_model, state)
    assert names["model.audio_tower.conv1.weight"] == "audio_tower.conv1.weight"  # as save_pretrained writes it
    assert set(worker.loaded) == set(names.values())
    assert all(torch.equal(worker.loaded[names[name]], tensor) for name, tensor in state.items())


def test_a_weight_the_server_cannot_load_is_named():
    with pytest.raises(WeightStreamError, match="failed loading streamed weights: KeyError.*no parameter named scale"):
        stream(WEIGHTS.items(), FakeWorker(fail_on="scale"))


def test_a_server_that_dies_mid_stream_stops_the_sync_with_its_reason():
    with pytest.raises(WeightStreamError, match="RuntimeError: engine died"):
        stream(WEIGHTS.items(), FakeWorker(stop_after=2))


def test_a_trainer_side_failure_mid_stream_reaches_the_server():
    def broken():
        yield "a", torch.ones(3)
        raise ValueError("merging failed")

    worker, errors = FakeWorker(), []

    def rpc(kwargs):
        try:
            worker.receive_weights(**kwargs)
        except BaseException as error:
            errors.append(error)
            raise

    sender = WeightStream(1024, timeout_s=10)
    try:
        with pytest.raises(ValueError, match="merging failed"):
            sender.send(broken(), rpc)
    finally:
        sender.close()
    for _ in range(50):  # the server notices the closed stream and fails its RPC, rather than loading half a model
        if errors:
            break
        threading.Event().wait(0.1)
    assert errors and "closed the weight stream before its end" in str(errors[0])


def test_a_server_that_never_connects_is_named_within_the_timeout():
    sender = WeightStream(1024, timeout_s=1)
    try:
        with pytest.raises(WeightStreamError, match="did not connect.*worker-extension-cls"):
            sender.send(WEIGHTS.items(), lambda kwargs: threading.Event().wait(5))
        with pytest.raises(WeightStreamError, match="receive_weights call failed: .*404"):
            sender.send(WEIGHTS.items(), lambda kwargs: (_ for _ in ()).throw(RuntimeError("404 no such method")))
    finally:
        sender.close()
