"""The family registry: what each record says is true of its model, and a merge that is base + LoRA delta for
every family the package embeds (Qwen2-Audio, the Qwen2.5-Omni thinker, text-only Qwen2)."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig
from transformers import AutoConfig

from audio_thinker.models.audio_policy import Qwen2_5OmniThinkerPolicy, Qwen2AudioPolicy
from audio_thinker.models.families import FAMILIES, TEXT, family_of
from audio_thinker.models.hf_export import merge_policy
from audio_thinker.models.loading import load_policy
from audio_thinker.models.policy import Policy

EMBEDDED = {
    "tiny-qwen2-audio": ("qwen2_audio", Qwen2AudioPolicy, "Qwen2AudioForConditionalGeneration"),
    "tiny-qwen2_5-omni": (
        "qwen2_5_omni_thinker",
        Qwen2_5OmniThinkerPolicy,
        "Qwen2_5OmniThinkerForConditionalGeneration",
    ),
    "tiny-qwen2": ("qwen2", Policy, "Qwen2ForCausalLM"),
}


def test_a_full_omni_checkpoint_trains_and_saves_its_thinker():
    omni = FAMILIES["qwen2_5_omni"]
    assert omni.model_class == "Qwen2_5OmniForConditionalGeneration" and omni.submodule == "thinker"
    # bitsandbytes reads module paths from the checkpoint's root, where the thinker sits under `thinker.`
    assert omni.skip_modules() == ["thinker.model.audio_tower", "thinker.model.visual", "thinker.lm_head"]
    assert FAMILIES["qwen2_5_omni_thinker"].skip_modules() == ["model.audio_tower", "model.visual", "lm_head"]
    assert omni.saved_as == FAMILIES["qwen2_5_omni_thinker"].saved_as == "Qwen2_5OmniThinkerForConditionalGeneration"


def test_a_model_type_without_a_record_is_a_text_model_kept_whole_under_quantization():
    assert family_of("llama") is TEXT and family_of("qwen2") is TEXT
    assert TEXT.skip_modules() == [] and TEXT.policy_class is Policy and TEXT.saved_as == "AutoModelForCausalLM"


@pytest.mark.parametrize("path", list(EMBEDDED))
def test_each_record_names_real_modules_of_its_embedded_model(path):
    model_type, policy_class, _ = EMBEDDED[path]
    policy = load_policy(path)
    family = family_of(policy.hf_model.config.model_type)
    assert policy.hf_model.config.model_type == model_type and type(policy) is policy_class is family.policy_class
    names = {name for name, _ in policy.hf_model.named_modules()}
    assert set(family.not_quantized) <= names  # a misspelled path would silently quantize the audio path
    assert policy.audio_trainable() is False  # the usual setup: the audio path frozen (and none in a text model)


def test_audio_trainable_follows_the_audio_encoder():
    assert load_policy("tiny-qwen2-audio", train_audio_encoder=True).audio_trainable() is True


def _perturbed_lora(path: str) -> Policy:
    """A LoRA policy with the family's default targets and non-zero deltas (peft starts B at zero)."""
    policy = load_policy(path, lora=LoraConfig(r=4, lora_alpha=8, target_modules=None, lora_dropout=0.0))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    return policy


def _expected_merge(policy: Policy) -> dict[str, torch.Tensor]:
    """W + (alpha / r) B A for every LoRA layer, under the plain model's parameter names."""
    expected = {}
    for name, module in policy.hf_model.named_modules():
        if hasattr(module, "lora_A"):
            delta = module.lora_B["default"].weight @ module.lora_A["default"].weight * (8 / 4)
            expected[f"{name}.weight"] = module.base_layer.weight.detach() + delta.detach()
    return expected


@pytest.mark.parametrize("path", list(EMBEDDED))
def test_a_merge_is_the_base_plus_the_lora_delta_and_opens_with_plain_transformers(path, tmp_path):
    model_type, policy_class, saved_class = EMBEDDED[path]
    policy = _perturbed_lora(path)
    expected = _expected_merge(policy)
    assert len(expected) == 2 * 7  # two layers x (q, k, v, o, gate, up, down) of the language model only
    untouched = {
        k: v.clone() for k, v in policy.hf_model.state_dict().items() if "lora_" not in k and ".base_layer." not in k
    }

    out = merge_policy(policy, tmp_path / "merged")

    assert AutoConfig.from_pretrained(out).model_type == model_type
    family = family_of(model_type)
    merged = family.load_saved(str(out))
    assert type(merged).__name__ == saved_class
    state = merged.state_dict()
    for key, weight in expected.items():
        torch.testing.assert_close(state[key], weight)
    for key, weight in untouched.items():
        torch.testing.assert_close(state[key], weight)
    assert f"`{family.saved_as}.from_pretrained(" in (out / "README.md").read_text()
    reloaded = load_policy(str(out))  # and audio-thinker trains or evaluates it as model.path
    assert type(reloaded) is policy_class and not reloaded.has_adapters
