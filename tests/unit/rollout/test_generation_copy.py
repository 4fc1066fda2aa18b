"""A merged generation copy computes what the training model computes, after real optimizer steps, refreshed in
place from the trained weights alone, and never touches the weights that train."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig
from transformers import BitsAndBytesConfig

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.format.prompts import THINK
from audio_thinker.models.loading import load_policy
from audio_thinker.rollout.engine import HFEngine, SamplingSettings
from audio_thinker.rollout.engine_registry import build_engine
from audio_thinker.rollout.generation_copy import GenerationCopy
from audio_thinker.rollout.sampler import sample_rollout

NF4 = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
CASES = {  # name -> (model, 4-bit, modules_to_save)
    "lora-text": ("tiny-qwen2", False, ["lm_head"]),
    "qlora-text": ("tiny-qwen2", True, None),
    "lora-audio": ("tiny-qwen2-audio", False, ["lm_head"]),
    "qlora-audio": ("tiny-qwen2-audio", True, None),
}


def adapted_policy(case: str):
    path, four_bit, modules_to_save = CASES[case]
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=None, modules_to_save=modules_to_save, task_type="CAUSAL_LM")
    return load_policy(path, lora=lora, quantization=NF4 if four_bit else None)


def prompt_embeds(policy, seed: int = 0) -> torch.Tensor:
    """Token embeddings of a short prompt, plus (audio policies) rows standing in for audio features: [1, P, H]."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 200, (1, 7), generator=generator)
    embeds = policy.hf_model.get_input_embeddings()(ids)
    if policy.has_audio:
        audio = torch.randn(1, 5, embeds.shape[-1], generator=generator) * embeds.std()
        embeds = torch.cat([embeds[:, :2], audio, embeds[:, 2:]], dim=1)
    return embeds.detach()


def policy_logits(policy, embeds: torch.Tensor) -> torch.Tensor:
    """The training model's logits (peft layers, 4-bit matmuls) for `embeds`: [1, P, V]."""
    with torch.no_grad():
        hidden = policy.decoder()(inputs_embeds=embeds).last_hidden_state
        return policy.hf_model.get_output_embeddings()(hidden).float()


def copy_logits(copy: GenerationCopy, embeds: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return copy.lm(inputs_embeds=embeds.to(copy.dtype)).logits.float()


def train_steps(policy, steps: int = 3) -> None:
    """Real AdamW steps on every trainable parameter (LoRA factors, modules_to_save copies) of a next-token loss."""
    torch.manual_seed(1)
    trainable = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=3e-2)
    ids = torch.randint(3, 200, (2, 12))
    policy.model.train()
    for _ in range(steps):
        logits = policy.model(input_ids=ids).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    policy.model.eval()


# bf16 weights and activations through the whole tiny model (as test_merged_weights allows), nothing more.
BF16 = 0.05


def gap(got: torch.Tensor, want: torch.Tensor) -> float:
    """Largest logit difference relative to the largest logit."""
    return float((got - want).abs().max() / want.abs().max())


@pytest.mark.parametrize("case", list(CASES))
def test_refreshed_copy_computes_what_the_trained_policy_computes(case):
    policy = adapted_policy(case)
    embeds = prompt_embeds(policy)
    merged = GenerationCopy(policy, torch.bfloat16)  # bf16 as on a GPU; float32 below checks the merge exactly
    exact = GenerationCopy(policy, torch.float32)
    assert gap(copy_logits(merged, embeds), policy_logits(policy, embeds)) < BF16
    train_steps(policy)
    want = policy_logits(policy, embeds)
    stale = gap(copy_logits(exact, embeds), want)
    merged.refresh(policy)
    exact.refresh(policy)
    assert gap(copy_logits(merged, embeds), want) < BF16
    assert gap(copy_logits(exact, embeds), want) < 1e-5 < 1e-2 < stale  # the steps mattered; the refresh caught up


@pytest.mark.parametrize("case", ["lora-audio", "qlora-text"])
def test_refresh_writes_in_place_and_only_the_weights_that_train(case):
    policy = adapted_policy(case)
    copy = GenerationCopy(policy, torch.bfloat16)
    assert not copy.lm.training and not any(p.requires_grad for p in copy.lm.parameters())
    assert type(copy.lm).__name__ == "Qwen2ForCausalLM"  # the language model alone, not the audio tower
    storage = {name: p.data_ptr() for name, p in copy.params.items()}
    norm = copy.lm.model.norm.weight
    with torch.no_grad():
        norm.zero_()  # a weight no adapter changes: a refresh must leave it as it is
    train_steps(policy, steps=1)
    refreshed = copy.refresh(policy)
    adapted = {f"{n}.weight" for n, m in copy.lm.named_modules() if n.endswith(("_proj",))}
    if CASES[case][2]:
        adapted.add("lm_head.weight")  # the trained modules_to_save copy
    assert refreshed == adapted
    assert {name: p.data_ptr() for name, p in copy.params.items()} == storage  # no new tensors
    assert not norm.any()


@pytest.mark.parametrize("case", ["lora-text", "qlora-audio"])
def test_building_and_refreshing_leave_the_training_model_bit_for_bit(case):
    policy = adapted_policy(case)
    train_steps(policy, steps=1)  # nonzero deltas, so a merge into the base would show
    before = {name: t.detach().clone() for name, t in policy.model.state_dict().items()}
    copy = GenerationCopy(policy, torch.bfloat16)
    copy.refresh(policy)
    after = policy.model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[name], value) for name, value in before.items())
    assert policy.has_adapters and any(p.requires_grad for p in policy.parameters())


def test_the_copy_takes_the_policy_compute_dtype_and_generation_defaults():
    policy = adapted_policy("lora-text")
    policy.hf_model.generation_config.repetition_penalty = 1.3  # as a checkpoint's generation_config.json may
    copy = GenerationCopy(policy)
    assert copy.dtype == torch.float32  # the tiny model trains in float32: its copy computes in float32 too
    assert copy.lm.generation_config.repetition_penalty == 1.3
    assert policy.hf_model.config.get_text_config().dtype == torch.float32  # the policy's own config untouched


def test_merged_weights_need_adapters_and_the_hf_engine():
    with pytest.raises(ValueError, match=r"rollout.generation_weights=merged needs LoRA adapters .*quant=lora"):
        GenerationCopy(load_policy("tiny-qwen2"))
    with pytest.raises(ValueError, match=r"rollout.generation_weights=merged: only engine=hf .* takes policy"):
        build_engine("vllm", {}, "merged")
    with pytest.raises(ValueError, match=r"rollout.generation_weights must be one of policy, merged; got 'fast'"):
        build_engine("hf", {}, "fast")
    assert isinstance(build_engine("hf", {}, "merged"), HFEngine)
    dora = LoraConfig(r=4, lora_alpha=8, target_modules=None, use_dora=True, task_type="CAUSAL_LM")
    with pytest.raises(ValueError, match=r"DoRA adapters \(lora.use_dora\) do not merge as W \+ ΔW"):
        GenerationCopy(load_policy("tiny-qwen2", lora=dora))


def test_omni_language_model_has_no_copy_class_and_says_so():
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=None, task_type="CAUSAL_LM")
    with pytest.raises(ValueError, match=r"qwen2_5_omni_text\) has no transformers causal-LM class .*weights=policy$"):
        GenerationCopy(load_policy("tiny-qwen2_5-omni", lora=lora))


@pytest.mark.parametrize("case", ["lora-audio", "qlora-audio"])
def test_merged_hf_engine_samples_the_tokens_the_policy_samples(case):
    """In the policy's compute dtype (float32 here) the copy is the policy's function: same seed, same tokens."""
    policy = adapted_policy(case)
    train_steps(policy, steps=2)
    examples = [SyntheticAudioQA(size=2)[i] for i in range(2)]
    sampling = SamplingSettings(max_new_tokens=8)
    engine = build_engine("hf", {}, "merged")
    engine.sync_weights(policy)
    rollouts = []
    for sampler in (engine, build_engine("hf")):
        torch.manual_seed(3)
        rollouts.append(sample_rollout(policy, examples, THINK, 2, sampling, sampler))
    merged, own = rollouts
    assert engine.copy.dtype == torch.float32 and merged.completion_ids.shape[1] > 1
    assert torch.equal(merged.completion_ids, own.completion_ids)
    # The copy reports what it sampled with (the loss's sampler correction reads it): here the policy's own
    # distribution less the never-sampled audio placeholders, so the trainer's log-probs renormalised over a few
    # tokens fewer (a hair higher). The policy engine samples from the trainer's own weights: nothing to report.
    assert own.sampling_logps is None and merged.sampling_logps.shape == merged.completion_ids.shape
    trainer = policy.completion_logps(merged.encoding, merged.completion_ids, merged.completion_mask)
    gap = (merged.sampling_logps - trainer.detach())[merged.completion_mask.bool()]
    assert (gap > -1e-5).all() and (gap < 1e-2).all()
