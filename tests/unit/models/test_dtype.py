"""`model.dtype=auto` (quant=lora's default) picks bfloat16 only on a GPU that supports it; bf16 on a CPU warns."""

from __future__ import annotations

import logging

import pytest
import torch

from audio_thinker.models import loading
from audio_thinker.models.loading import resolve_dtype


@pytest.mark.parametrize(
    ("cuda", "bf16", "device", "expected"),
    [
        (False, False, "auto", "float32"),  # this machine: no GPU
        (False, False, "cpu", "float32"),
        (True, True, "auto", "bfloat16"),  # an A100/H100
        (True, True, "gpu", "bfloat16"),
        (True, True, "cuda:1", "bfloat16"),
        (True, True, "cpu", "float32"),  # a GPU machine told to train on its CPU
        (True, False, "gpu", "float32"),  # a V100 or T4: no bfloat16 units
    ],
)
def test_auto_is_bfloat16_only_on_a_gpu_that_supports_it(monkeypatch, cuda, bf16, device, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert resolve_dtype("auto", device) == expected


def test_bfloat16_forced_on_a_cpu_is_kept_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger=loading.__name__):
        assert resolve_dtype("bfloat16", "auto") == "bfloat16"
        assert resolve_dtype("float32", "cpu") == "float32"
    assert caplog.text.count("model.dtype=bfloat16 on the CPU") == 1 and "model.dtype=auto" in caplog.text


def test_quant_lora_trains_in_float32_on_a_cpu(train_cfg):
    from audio_thinker.models.loading import build_policy

    cfg = train_cfg(["quant=lora"])
    assert cfg.model.dtype == "auto"
    policy = build_policy(cfg.model, cfg.trainer.accelerator)
    assert policy.hf_model.dtype == torch.float32  # was bfloat16: 227 s against 64 s for 5 steps
