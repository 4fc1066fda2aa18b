"""Adapter export at the end of training, from a checkpoint, and merged into the base: same outputs."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from peft import PeftModel
from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

from audio_thinker.cli import main
from audio_thinker.models.audio_policy import Qwen2AudioPolicy
from audio_thinker.models.sources import resolve_path
from audio_thinker.train import build_module, build_trainer
from tests.helpers.rewards import LENGTH_REWARD
from tests.helpers.training import tiny_rollout


def _logps(policy, rollout):
    with torch.no_grad():
        return policy.completion_logps(rollout.encoding, rollout.completion_ids, rollout.completion_mask)


@pytest.fixture
def trained(train_cfg, tmp_path):
    """A 2-step LoRA run (float32 so reloads compare tightly) with its checkpoint and end-of-run export."""
    cfg = train_cfg(["quant=lora", "model.dtype=float32", "trainer.max_steps=2", "optimizer.lr=1e-2", *LENGTH_REWARD])
    module = build_module(cfg)
    build_trainer(cfg).fit(module, datamodule=instantiate(cfg.data))
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    return module, tmp_path


def test_exported_adapter_reloads_with_peft_and_reproduces_the_policy(trained):
    module, run = trained
    rollout = tiny_rollout(module)
    expected = _logps(module.policy, rollout)
    base = Qwen2AudioForConditionalGeneration.from_pretrained(resolve_path("tiny-qwen2-audio"))
    adapter = PeftModel.from_pretrained(base, run / "export")
    reloaded = Qwen2AudioPolicy(adapter, AutoProcessor.from_pretrained(run / "export"))
    assert torch.allclose(_logps(reloaded, rollout), expected, atol=1e-5)


def test_export_command_from_a_checkpoint_and_merge(trained, tmp_path):
    module, run = trained
    rollout = tiny_rollout(module)
    expected = _logps(module.policy, rollout)
    out, ckpt = tmp_path / "from_ckpt", str(run / "checkpoints" / "last.ckpt")
    # The run trained with a reward of the user's own (LENGTH_REWARD): its target is data, never built by export.
    with pytest.raises(SystemExit) as done:
        main(["export", ckpt, "--out", str(out), "--merge"])
    assert done.value.code == 0
    merged = Qwen2AudioForConditionalGeneration.from_pretrained(out / "merged")
    assert not any("lora" in name for name, _ in merged.named_parameters())  # a plain transformers model
    plain = Qwen2AudioPolicy(merged, AutoProcessor.from_pretrained(out / "merged"))
    assert torch.allclose(_logps(plain, rollout), expected, atol=1e-4)


def test_export_of_a_foreign_checkpoint_names_the_problem(tmp_path):
    bogus = tmp_path / "checkpoints" / "x.ckpt"
    bogus.parent.mkdir()
    torch.save({"state_dict": {"encoder.weight": torch.zeros(1)}}, bogus)
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        main(["export", str(bogus), "--out", str(tmp_path / "o")])


def test_checkpoints_hold_only_what_trains(trained):
    """LoRA run: the checkpoint carries the adapters and counters, not the frozen base (rebuilt from config)."""
    module, run = trained
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    stored = {k for k in state["state_dict"] if k in dict(module.named_parameters())}
    assert stored == trainable and all("lora_" in k for k in stored)
    assert state["nonfinite_losses"] == 0


# The attacks on `export` (a run folder's config naming code) are in tests/security/test_run_config.py.
