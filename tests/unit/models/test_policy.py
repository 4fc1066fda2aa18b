"""The policy's three operations on the embedded tiny Qwen2-Audio."""

from __future__ import annotations

import pytest
import torch

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.format.prompts import THINK
from audio_thinker.models.loading import load_policy
from audio_thinker.models.policy import render_prompts
from audio_thinker.rollout.sampler import completion_mask


@pytest.fixture(scope="module")
def policy():
    return load_policy("tiny-qwen2-audio")


@pytest.fixture(scope="module")
def encoding(policy):
    examples = [SyntheticAudioQA(size=5)[i] for i in (0, 4)]  # different clip lengths -> left padding
    return policy.encode_prompts(render_prompts(policy, examples, THINK), [e.audio for e in examples])


def test_prompts_are_left_padded_with_one_feature_row_per_audio_token(policy, encoding):
    lengths = encoding.attention_mask.sum(dim=1)
    assert lengths[0] != lengths[1] and (encoding.attention_mask[:, -1] == 1).all()
    placeholders = int((encoding.input_ids == policy.audio_token_id).sum())
    assert encoding.audio_embeds.shape == (placeholders, policy.hf_model.config.text_config.hidden_size)


def test_our_logprobs_equal_generation_scores_and_the_transformers_forward(policy, encoding):
    """Catches position-id, padding and audio-placement mistakes in the cached-embedding path."""
    torch.manual_seed(0)
    out = policy.hf_model.generate(
        inputs_embeds=policy.embed_prompts(encoding),
        attention_mask=encoding.attention_mask,
        do_sample=True,
        max_new_tokens=10,
        num_return_sequences=2,
        output_logits=True,
        return_dict_in_generate=True,
        suppress_tokens=policy.special_token_ids(),
        eos_token_id=-1,
        pad_token_id=0,
    )
    ids = out.sequences  # [4, 10], no stop token so every position is real
    sampled = torch.stack(out.logits, 1).float().log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    ours = policy.completion_logps(encoding, ids, torch.ones_like(ids))
    assert torch.allclose(ours, sampled, atol=1e-4)
    full = policy.hf_model(
        input_ids=torch.cat([encoding.input_ids.repeat_interleave(2, 0), ids], 1),
        attention_mask=torch.cat([encoding.attention_mask.repeat_interleave(2, 0), torch.ones_like(ids)], 1),
        input_features=encoding.input_features.repeat_interleave(2, 0),
        feature_attention_mask=encoding.feature_attention_mask.repeat_interleave(2, 0),
    )  # the reference implementation: transformers' own audio merge on every sample
    prompt_len = encoding.input_ids.shape[1]
    reference = full.logits[:, prompt_len - 1 : -1].float().log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(ours, reference, atol=1e-4)


def test_audio_placeholders_are_never_sampled(policy, encoding):
    """A random policy can sample <|AUDIO|>; the next forward would then fail. Make it the likeliest token."""
    head = policy.hf_model.get_output_embeddings()
    bias = torch.zeros(head.out_features)
    bias[policy.special_token_ids()] = 1e4
    handle = head.register_forward_hook(lambda _m, _i, out: out + bias)
    try:
        ids = policy.generate(encoding, 4, do_sample=True, max_new_tokens=8)
    finally:
        handle.remove()
    assert not torch.isin(ids, torch.tensor(policy.special_token_ids())).any()


def test_audio_encoder_runs_once_per_example_per_step(policy, encoding):
    calls = []
    handle = policy.hf_model.model.audio_tower.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        examples = [SyntheticAudioQA(size=3)[i] for i in range(3)]
        enc = policy.encode_prompts(render_prompts(policy, examples, THINK), [e.audio for e in examples])
        ids = policy.generate(enc, 4, do_sample=True, max_new_tokens=6)
        policy.completion_logps(enc, ids, torch.ones_like(ids))
        with policy.reference_context():
            policy.completion_logps(enc, ids, torch.ones_like(ids))
    finally:
        handle.remove()
    assert calls == [3]  # one batched pass over the 3 examples, none for 12 samples x 3 passes


def test_completion_mask_keeps_the_first_stop_token_and_drops_what_follows():
    ids = torch.tensor([[5, 6, 2, 0, 0], [5, 2, 2, 7, 0], [5, 6, 7, 8, 9]])
    assert completion_mask(ids, [2]).tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]


def test_unknown_dtype_names_the_field():
    with pytest.raises(ValueError, match="model.dtype"):
        load_policy("tiny-qwen2-audio", dtype="float8")


def test_text_only_policy_ignores_audio_and_scores_its_samples():
    text_policy = load_policy("tiny-qwen2")
    examples = [SyntheticAudioQA(size=2)[i] for i in range(2)]
    prompts = render_prompts(text_policy, examples, THINK)
    assert "<|AUDIO|>" not in prompts[0] and examples[0].question in prompts[0]
    enc = text_policy.encode_prompts(prompts)
    ids = text_policy.generate(enc, 2, do_sample=True, max_new_tokens=5)
    logps = text_policy.completion_logps(enc, ids, torch.ones_like(ids))
    assert logps.shape == ids.shape and (logps <= 0).all()


def test_omni_thinker_logprobs_equal_its_own_forward_and_encode_audio_once():
    """Qwen2.5-Omni thinker through the audio-only processor: same numbers as transformers' forward."""
    omni = load_policy("tiny-qwen2_5-omni")
    examples = [SyntheticAudioQA(size=5)[i] for i in (0, 4)]
    calls = []
    handle = omni.hf_model.model.audio_tower.register_forward_hook(lambda m, i, o: calls.append(1))
    try:
        enc = omni.encode_prompts(render_prompts(omni, examples, THINK), [e.audio for e in examples])
        ids = omni.generate(enc, 2, do_sample=True, max_new_tokens=6, min_new_tokens=6)
        ours = omni.completion_logps(enc, ids, torch.ones_like(ids))
    finally:
        handle.remove()
    assert calls == [1]
    full = omni.hf_model(
        input_ids=torch.cat([enc.input_ids.repeat_interleave(2, 0), ids], 1),
        attention_mask=torch.cat([enc.attention_mask.repeat_interleave(2, 0), torch.ones_like(ids)], 1),
        input_features=enc.input_features.repeat_interleave(2, 0),
        feature_attention_mask=enc.feature_attention_mask.repeat_interleave(2, 0),
    )
    prompt_len = enc.input_ids.shape[1]
    reference = full.logits[:, prompt_len - 1 : -1].float().log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(ours, reference, atol=1e-4)


def test_shared_prompt_pass_matches_the_full_pass_in_values_and_gradients(policy, encoding):
    """The prompt-once KV-cache path must be the same function as running every sample in full."""
    torch.manual_seed(1)
    ids = policy.generate(encoding, 3, do_sample=True, max_new_tokens=7)
    mask = completion_mask(ids, policy.stop_token_ids())
    group_size = 3
    full_mask = torch.cat([encoding.attention_mask.repeat_interleave(group_size, 0), mask], 1)
    positions = (full_mask.cumsum(1) - 1).clamp(min=0)
    results = []
    for path in (policy._hidden_full, policy._hidden_shared_prompt):
        policy.zero_grad()
        hidden = path(policy.embed_prompts(encoding), ids, full_mask, positions, group_size)
        (hidden.sum(-1) * mask).sum().backward()
        grads = [p.grad.clone() for p in policy.parameters() if p.grad is not None]
        results.append((hidden.detach(), grads))
    policy.zero_grad()
    (h_full, g_full), (h_shared, g_shared) = results
    assert torch.allclose(h_full * mask[..., None], h_shared * mask[..., None], atol=1e-5)
    assert len(g_full) == len(g_shared) > 0
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(g_full, g_shared, strict=True))


def test_generation_with_a_shared_prefill_equals_plain_generate(policy, encoding):
    """Prefilling each prompt once and repeating its cache must not change a single generated token."""
    plain = policy.hf_model.generate(
        inputs_embeds=policy.embed_prompts(encoding).repeat_interleave(3, 0),
        attention_mask=encoding.attention_mask.repeat_interleave(3, 0),
        do_sample=False,
        max_new_tokens=12,
        suppress_tokens=policy.special_token_ids(),
        eos_token_id=policy.stop_token_ids(),
        pad_token_id=policy.tokenizer.pad_token_id,
    )
    shared = policy.generate(encoding, 3, do_sample=False, max_new_tokens=12)
    assert torch.equal(shared, plain)


def test_an_audio_policy_renders_text_alone_prompts_without_the_clip():
    policy, example = load_policy("tiny-qwen2-audio"), SyntheticAudioQA(size=1)[0]
    [with_clip] = render_prompts(policy, [example], THINK)
    [text_alone] = render_prompts(policy, [example], THINK, with_audio=False)
    assert "<|AUDIO|>" in with_clip and "<|AUDIO|>" not in text_alone
    assert text_alone.endswith("<|im_start|>assistant\n") and example.question in text_alone


def test_unpadded_prompts_score_without_a_mask_exactly_as_with_one(policy, encoding, monkeypatch):
    """With no left padding the log-prob passes run plain causal attention (`needed_mask`): a completion's padding
    after its stop comes after every real token, so the real tokens' log-probs are those of the masked passes."""
    import audio_thinker.models.policy as policy_module

    one = encoding.select(range(1, 2))  # one prompt: nothing to pad
    assert bool(one.attention_mask.all())
    torch.manual_seed(2)
    ids = policy.generate(one, 3, do_sample=True, max_new_tokens=8)
    ids[0, 2] = policy.stop_token_ids()[0]  # one completion stops early: padding after it
    mask = completion_mask(ids, policy.stop_token_ids())
    assert not bool(mask.all())
    calls = []
    monkeypatch.setattr(policy_module, "needed_mask", lambda m, p: calls.append(m) or None)
    unmasked = policy.completion_logps(one, ids, mask, temperature=0.7)
    assert calls  # the path asks whether it needs a mask
    monkeypatch.setattr(policy_module, "needed_mask", lambda m, p: m)
    masked = policy.completion_logps(one, ids, mask, temperature=0.7)
    assert torch.allclose(unmasked * mask, masked * mask, atol=1e-5)
    assert policy_module.needed_mask(encoding.attention_mask, encoding.attention_mask) is encoding.attention_mask
