"""Adapter export at the end of training, from a checkpoint, and merged into the base: same outputs."""

from __future__ import annotations

import re

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from peft import PeftModel
from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

from audio_thinker.cli import main
from audio_thinker.models.export import UnsafeConfigError, check_model_config
from audio_thinker.models.loading import resolve_path
from audio_thinker.models.policy import Qwen2AudioPolicy
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
    out = tmp_path / "from_ckpt"
    with pytest.raises(SystemExit) as done:
        main(["export", str(run / "checkpoints" / "last.ckpt"), "--out", str(out), "--merge"])
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


def _run_folder(tmp_path, model: dict):
    """A run folder whose checkpoint is a stub and whose config names `model`."""
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": {}}, ckpt)
    (tmp_path / "run" / ".hydra").mkdir()
    (tmp_path / "run" / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml({"model": model}))
    return ckpt


TINY = {"_target_": "audio_thinker.models.loading.load_policy", "path": "tiny-qwen2-audio"}


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ({"_target_": "builtins.open", "file": "VICTIM", "mode": "w"}, "model._target_='builtins.open'"),
        ({**TINY, "lora": {"_target_": "os.system", "command": "touch VICTIM"}}, "model.lora._target_='os.system'"),
        ({**TINY, "attn_implementation": "kernels-community/flash-attn"}, "model.attn_implementation"),
    ],
)
def test_export_rebuilds_the_model_only_from_our_loaders(tmp_path, capsys, model, key):
    victim = tmp_path / "victim.txt"
    model = OmegaConf.to_container(OmegaConf.create(model))
    for node in (model, model.get("lora") or {}):
        for name, value in node.items():
            if isinstance(value, str):
                node[name] = value.replace("VICTIM", str(victim))
    ckpt = _run_folder(tmp_path, model)
    with pytest.raises(UnsafeConfigError, match=re.escape(key)) as err:
        main(["export", str(ckpt), "--out", str(tmp_path / "out")])
    assert str(tmp_path / "run" / ".hydra" / "config.yaml") in str(err.value) and not victim.exists()
    assert f"model config: {tmp_path / 'run' / '.hydra' / 'config.yaml'}" in capsys.readouterr().out


def test_trust_remote_code_in_a_run_config_needs_the_command_line_flag(tmp_path):
    ckpt = _run_folder(tmp_path, {**TINY, "trust_remote_code": True})
    with pytest.raises(UnsafeConfigError, match="refused unless you pass --trust-remote-code"):
        main(["export", str(ckpt), "--out", str(tmp_path / "out")])
    node = OmegaConf.load(tmp_path / "run" / ".hydra" / "config.yaml").model
    check_model_config(node, "cfg", trust_remote_code=True)  # with the flag, the check lets it through


def test_eval_from_a_checkpoint_applies_the_same_allow_list(tmp_path):
    from audio_thinker.eval.weights import load_eval_policy

    ckpt = _run_folder(tmp_path, TINY)
    exec_node = {"_target_": "builtins.exec", "source": "1"}
    with pytest.raises(UnsafeConfigError, match="builtins.exec"):  # the eval config's own model
        load_eval_policy(OmegaConf.create(exec_node), ckpt_path=str(ckpt), run_config=None)
    unsafe = _run_folder(tmp_path / "other", exec_node)
    with pytest.raises(UnsafeConfigError, match=r"other/run/\.hydra/config\.yaml: model\._target_='builtins.exec'"):
        load_eval_policy(OmegaConf.create(TINY), ckpt_path=str(unsafe))  # the run's config beside the checkpoint
