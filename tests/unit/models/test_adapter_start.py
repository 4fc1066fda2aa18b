"""`model.path=<a PEFT adapter folder>` (TRL's or ms-SWIFT's LoRA checkpoint): its base with the adapter merged in,
the same function as the adapter on its base; a missing base or a 4-bit base explained."""

from __future__ import annotations

import json

import pytest
import torch
from peft import LoraConfig

import audio_thinker.train as train_module
from audio_thinker.models.loading import load_policy
from audio_thinker.models.sources import ModelSourceError, check_model_source


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """A trained-looking LoRA adapter on the embedded tiny Qwen2-Audio, saved as TRL and ms-SWIFT save theirs."""
    policy = load_policy("tiny-qwen2-audio", lora=LoraConfig(r=4, lora_alpha=8, target_modules=None))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.3)
    folder = tmp_path_factory.mktemp("trl_output") / "checkpoint-500"
    policy.model.save_pretrained(folder)
    return policy, folder


def test_an_adapter_folder_loads_as_its_base_with_the_adapter_merged(adapter):
    peft_policy, folder = adapter
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
    check_model_source(str(folder))  # the config check accepts it: its base is a model
    merged = load_policy(str(folder))
    assert not merged.has_adapters  # a plain model again: training adds its own LoRA, or trains it all
    peft_policy.model.eval()
    merged.hf_model.eval()
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        expected = peft_policy.model(input_ids=ids).logits
        got = merged.hf_model(input_ids=ids).logits
        base = load_policy("tiny-qwen2-audio").hf_model.eval()(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-4) and not torch.allclose(got, base, atol=1e-3)


def test_an_adapter_without_a_base_or_on_a_4bit_base_is_explained(adapter, tmp_path):
    _, folder = adapter
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(ModelSourceError, match="it holds a LoRA adapter: set model.path to its base model"):
        check_model_source(str(tmp_path))
    config = json.loads((folder / "adapter_config.json").read_text())
    (tmp_path / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "/nowhere/x"}))
    with pytest.raises(ModelSourceError, match=r"\(a PEFT adapter\) base_model_name_or_path='/nowhere/x': not a local"):
        check_model_source(str(tmp_path))
    with pytest.raises(ValueError, match="a 4-bit base \\(quant=qlora_nf4\\) cannot have it merged in: merge it first"):
        load_policy(str(folder), lora=LoraConfig(r=4), quantization=object())


def test_training_starts_from_an_adapter_folder(adapter, train_cfg):
    _, folder = adapter
    metrics = train_module.train(train_cfg([f"model.path={folder}", "trainer.max_steps=1", "callbacks.export=null"]))
    assert "loss/total" in metrics
