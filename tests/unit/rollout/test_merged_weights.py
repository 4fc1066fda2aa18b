"""A LoRA policy is written merged, as a plain checkpoint, without touching the weights that train."""

from __future__ import annotations

import copy

import torch
from peft import LoraConfig
from transformers import AutoModelForCausalLM

from audio_thinker.models.loading import load_policy
from audio_thinker.rollout.merged_weights import merged_state_dict, model_summary, save_merged


def lora_policy():
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=None, modules_to_save=["lm_head"], task_type="CAUSAL_LM")
    policy = load_policy("tiny-qwen2", lora=lora)
    with torch.no_grad():  # B starts at zero (ΔW = 0): make every adapter and the lm_head copy matter
        for name, param in policy.model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                param.add_(torch.randn_like(param) * 0.1)
    return policy


def test_merged_weights_equal_peft_merge_and_training_weights_stay_as_they_were():
    policy = lora_policy()
    before = {name: param.detach().clone() for name, param in policy.model.named_parameters()}
    merged = merged_state_dict(policy.hf_model)
    reference = copy.deepcopy(policy.model).merge_and_unload().state_dict()
    assert merged.keys() == reference.keys()
    for key in reference:
        assert torch.allclose(merged[key], reference[key], atol=1e-6), key
    assert not torch.equal(merged["lm_head.weight"], before["base_model.model.lm_head.original_module.weight"])
    after = dict(policy.model.named_parameters())
    assert all(torch.equal(after[name], value) for name, value in before.items())
    assert policy.has_adapters  # still the adapter model that trains


def test_saved_checkpoint_loads_as_a_plain_model_that_computes_what_the_policy_computes(tmp_path):
    policy = lora_policy()
    save_merged(policy, tmp_path)
    plain = AutoModelForCausalLM.from_pretrained(tmp_path)
    ids = torch.tensor([[1, 5, 9, 30, 2]])
    with torch.no_grad():
        assert torch.allclose(plain(ids).logits, policy.model(input_ids=ids).logits, atol=1e-5)
    assert (tmp_path / "tokenizer.json").is_file()  # the processor (here the tokenizer) travels with it


def test_model_summary_reads_audio_and_text_configs():
    config = {
        "model_type": "qwen2_audio",
        "audio_config": {"d_model": 64},
        "text_config": {
            "vocab_size": 9,
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
        },
    }
    assert model_summary(config) == {
        "model_type": "qwen2_audio",
        "vocab_size": 9,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "audio_d_model": 64,
    }


def test_qlora_weights_come_dequantised_with_the_adapters_merged_one_tensor_at_a_time():
    from transformers import BitsAndBytesConfig

    from audio_thinker.rollout.merged_weights import merged_weights

    nf4 = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    policy = load_policy("tiny-qwen2", lora=LoraConfig(r=4, lora_alpha=8, target_modules=None), quantization=nf4)
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.add_(torch.randn_like(param) * 0.1)
    stream = merged_weights(policy.hf_model, dtype=torch.bfloat16)
    assert not isinstance(stream, dict)  # a generator: the consumer decides how many tensors are alive
    weights = dict(stream)
    plain = AutoModelForCausalLM.from_config(policy.hf_model.config, dtype=torch.bfloat16)
    missing, unexpected = plain.load_state_dict(weights, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}  # tied to the embeddings in the tiny model
    assert all(value.dtype == torch.bfloat16 for value in weights.values())
    ids = torch.tensor([[1, 5, 9, 30, 2]])
    with torch.no_grad():
        want = policy.model(input_ids=ids).logits
        got = plain.float()(ids).logits
    assert (got - want).abs().max() < 0.05 * want.abs().max()  # bf16 rounding of the weights, nothing more
