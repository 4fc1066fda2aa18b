"""Hugging Face interop: `checkpoint-<step>/` folders, merges that keep the training dtype (Qwen2-Audio and the
Qwen2.5-Omni thinker), real model cards, "nothing to merge", and `--push-to-hub` (offline, and through a stand-in
client)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import huggingface_hub
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from peft import PeftModel
from transformers import AutoConfig, Qwen2_5OmniThinkerForConditionalGeneration, Qwen2AudioForConditionalGeneration

from audio_thinker.callbacks.hf_checkpoint import HFCheckpointCallback
from audio_thinker.cli import main
from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.format.prompts import THINK
from audio_thinker.models.hub import PushError
from audio_thinker.models.loading import load_policy
from audio_thinker.models.sources import resolve_path
from audio_thinker.rollout.engine import SamplingSettings
from audio_thinker.rollout.sampler import sample_rollout
from audio_thinker.train import build_module, build_trainer
from tests.helpers.configs import compose_train
from tests.helpers.rewards import LENGTH_REWARD
from tests.helpers.training import fake_run, tiny_rollout


def export(*args: str) -> None:
    with pytest.raises(SystemExit) as done:
        main(["export", *args])
    assert done.value.code == 0


def logps(policy, rollout):
    with torch.no_grad():
        return policy.completion_logps(rollout.encoding, rollout.completion_ids, rollout.completion_mask)


def test_a_merge_keeps_the_dtype_training_used_and_writes_a_real_card(tmp_path, capsys):
    # quant=lora has model.dtype=auto: the checkpoint records what it became on the training device (bf16 on a GPU).
    _, ckpt = fake_run(tmp_path, ["quant=lora", "reward=cesar"], step=7, model_dtype="bfloat16")
    out = tmp_path / "out"
    export(str(ckpt), "--out", str(out), "--merge")
    merged = out / "merged"
    assert str(AutoConfig.from_pretrained(merged).dtype).endswith("bfloat16")
    weights = load_policy(str(merged), dtype="bfloat16").hf_model
    assert not any("lora" in name for name, _ in weights.named_parameters())
    card = (merged / "README.md").read_text()
    assert "[More Information Needed]" not in card and "library_name: transformers" in card
    for expected in (
        "Merged model trained with audio-thinker",
        "`tiny-qwen2-audio`",
        "LoRA adapters (r=16, alpha=32)",
        "merged into the base weights",
        "weights in bfloat16",
        "Steps: 7 of 2",
        "`consistency`",
        "`keywords` (KeywordReward), weight 1.0",
        "`accuracy` (AccuracyReward), weight 5.0",
        "synthetic audio questions",
    ):
        assert expected in card, expected
    adapter_card = (out / "README.md").read_text()  # the adapter's card replaces peft's placeholder too
    assert "library_name: peft" in adapter_card and "LoRA adapter trained with audio-thinker" in adapter_card
    assert f"merged -> {merged}" in capsys.readouterr().out


def test_the_omni_thinker_merges_and_reloads_with_the_same_outputs(tmp_path):
    policy, ckpt = fake_run(tmp_path, ["model=tiny_qwen2_5_omni", "quant=lora"])
    examples = [SyntheticAudioQA(size=2)[i] for i in (0, 1)]
    rollout = sample_rollout(policy, examples, THINK, 2, SamplingSettings(max_new_tokens=6))
    out = tmp_path / "out"
    export(str(ckpt), "--out", str(out), "--merge")
    assert AutoConfig.from_pretrained(out / "merged").model_type == "qwen2_5_omni_thinker"
    Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(out / "merged")  # plain transformers opens it
    merged = load_policy(str(out / "merged"))  # and audio-thinker trains or evaluates it as model.path
    assert not merged.has_adapters
    assert torch.allclose(logps(merged, rollout), logps(policy, rollout), atol=1e-4)


def test_a_full_fine_tune_has_nothing_to_merge(tmp_path, capsys):
    _, ckpt = fake_run(tmp_path, ["loss.beta=0"])
    out = tmp_path / "out"
    export(str(ckpt), "--out", str(out), "--merge")
    printed = capsys.readouterr().out
    assert "nothing to merge: this run fine-tuned the whole model" in printed
    assert (out / "model.safetensors").is_file() and not (out / "merged").exists()
    card = (out / "README.md").read_text()
    assert "Fine-tuning: full fine-tuning" in card and "library_name: transformers" in card


def test_push_to_hub_offline_names_the_repository_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    named = r"--push-to-hub me/tiny-thinker: HF_HUB_OFFLINE=1 .* pushed to me/tiny-thinker"
    with pytest.raises(PushError, match=named):
        main(
            [
                "export",
                str(tmp_path / "no" / "checkpoints" / "last.ckpt"),
                "--out",
                str(out),
                "--push-to-hub",
                "me/tiny-thinker",
            ]
        )
    assert not out.exists()
    with pytest.raises(PushError, match="not a Hub repository id"):
        main(["export", "x.ckpt", "--out", str(out), "--push-to-hub", "not/a/repo"])


class FakeHub:
    """Stands in for `huggingface_hub.HfApi`: records the calls, or fails like a network that is down."""

    calls: list = []
    fail: Exception | None = None

    def create_repo(self, repo, private=False, exist_ok=False):
        if FakeHub.fail is not None:
            raise FakeHub.fail
        FakeHub.calls.append(("create_repo", repo, private, exist_ok))

    def upload_folder(self, repo_id, folder_path, commit_message):
        FakeHub.calls.append(("upload_folder", repo_id, folder_path))
        return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/abc")


def test_push_to_hub_uploads_the_merged_model_and_explains_a_failure(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    FakeHub.calls, FakeHub.fail = [], None
    _, ckpt = fake_run(tmp_path, ["quant=lora"])
    export(str(ckpt), "--out", str(tmp_path / "out"), "--merge", "--push-to-hub", "me/tiny", "--private")
    assert FakeHub.calls == [
        ("create_repo", "me/tiny", True, True),
        ("upload_folder", "me/tiny", str(tmp_path / "out" / "merged")),
    ]
    assert "-> https://huggingface.co/me/tiny/commit/abc" in capsys.readouterr().out
    FakeHub.fail = ConnectionError("[Errno -2] Name or service not known")
    with pytest.raises(PushError, match=r"--push-to-hub me/tiny: the upload failed \(ConnectionError") as err:
        main(["export", str(ckpt), "--out", str(tmp_path / "again"), "--push-to-hub", "me/tiny"])
    assert f"hf upload me/tiny {tmp_path / 'again'}" in str(err.value)


def test_checkpoint_folders_are_written_with_each_lightning_checkpoint_and_open_with_peft(tmp_path):
    cfg = compose_train(
        tmp_path,
        [
            "quant=lora",
            "trainer.max_steps=2",
            "optimizer.lr=1e-2",
            "loss.beta=0",
            "callbacks.model_checkpoint.every_n_train_steps=1",
            "callbacks.hf_checkpoint.save_total_limit=1",
            "callbacks.export=null",
            *LENGTH_REWARD,
        ],
    )
    module = build_module(cfg)
    build_trainer(cfg).fit(module, datamodule=instantiate(cfg.data))
    folders = sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.is_dir())
    assert folders == ["checkpoint-2"]  # checkpoint-1 was written, then pruned (save_total_limit=1)
    rollout = tiny_rollout(module)
    base = Qwen2AudioForConditionalGeneration.from_pretrained(resolve_path("tiny-qwen2-audio"))
    reloaded = type(module.policy)(
        PeftModel.from_pretrained(base, tmp_path / "checkpoints" / "checkpoint-2"), module.policy.processor
    )
    assert torch.allclose(logps(reloaded, rollout), logps(module.policy, rollout), atol=1e-5)
    assert "- Steps: 2" in (tmp_path / "checkpoints" / "checkpoint-2" / "README.md").read_text()
    assert not list((tmp_path / "checkpoints").glob(".checkpoint-*"))  # no temporary folder left


def test_hf_checkpoint_null_turns_the_folders_off(tmp_path):
    cfg = compose_train(tmp_path, ["callbacks.hf_checkpoint=null"])
    assert not any(isinstance(cb, HFCheckpointCallback) for cb in build_trainer(cfg).callbacks)
    on = compose_train(tmp_path, [])
    assert any(isinstance(cb, HFCheckpointCallback) for cb in build_trainer(on).callbacks)  # on by default


def test_a_folder_whose_write_fails_is_not_left_half_written(tmp_path):
    class Exploding:
        has_adapters = True
        # A full disk, a kill: the save fails after some bytes were written.
        model = SimpleNamespace(
            save_pretrained=lambda out: (out / "adapter_model.safetensors").write_bytes(b"x") and 1 / 0
        )

    callback = HFCheckpointCallback(str(tmp_path))
    with pytest.raises(ZeroDivisionError):
        callback.write(Exploding(), 5)
    assert list(tmp_path.iterdir()) == []


def test_a_qlora_run_exports_and_merges_on_an_unquantized_base(tmp_path):
    _, ckpt = fake_run(tmp_path, ["quant=lora"])
    config = ckpt.parent.parent / ".hydra" / "config.yaml"
    run_cfg = OmegaConf.load(config)  # as quant=qlora_nf4 writes it: a 4-bit base under the adapter
    run_cfg.model.quantization = {
        "_target_": "transformers.BitsAndBytesConfig",
        "load_in_4bit": True,
        "bnb_4bit_quant_type": "nf4",
    }
    config.write_text(OmegaConf.to_yaml(run_cfg))
    export(str(ckpt), "--out", str(tmp_path / "out"), "--merge")
    merged = json.loads((tmp_path / "out" / "merged" / "config.json").read_text())
    assert "quantization_config" not in merged  # bitsandbytes never loaded: the adapter is the same on this base
    assert "4-bit NF4 base (QLoRA)" in (tmp_path / "out" / "README.md").read_text()
