"""Shared-prompt log-prob passes with activation checkpointing: the same values and gradients as the full pass."""

from __future__ import annotations

import functools

import pytest
import torch

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.format.prompts import THINK
from audio_thinker.models import prompt_cache
from audio_thinker.models.loading import load_policy
from audio_thinker.models.policy import activation_checkpointing, render_prompts
from audio_thinker.rollout.sampler import completion_mask

GROUP = 3


def logps_and_grads(policy, encoding, ids, mask, full: bool):
    """Completion log-probs [N, C] and every trainable parameter's gradient of their masked sum."""
    policy.zero_grad()
    original = policy.shares_prompt_passes
    policy.shares_prompt_passes = (lambda: False) if full else original
    try:
        logps = policy.completion_logps(encoding, ids, mask)
    finally:
        del policy.shares_prompt_passes  # the instance attribute; the method shows through again
    (logps * mask).sum().backward()
    grads = {name: p.grad.clone() for name, p in policy.named_parameters() if p.grad is not None}
    policy.zero_grad()
    return logps.detach() * mask, grads


def counted(checkpoint: functools.partial, calls: list) -> functools.partial:
    """A layer's checkpoint function (a partial with its settings) that appends to `calls` on every call."""

    def function(*args, **kwargs):
        calls.append(1)
        return checkpoint.func(*args, **kwargs)

    return functools.partial(function, *checkpoint.args, **checkpoint.keywords)


@pytest.fixture(scope="module", params=["tiny-qwen2-audio", "tiny-qwen2"])
def checkpointed(request):
    """A policy with non-reentrant activation checkpointing (what `model.gradient_checkpointing=true` sets)."""
    policy = load_policy(request.param, gradient_checkpointing=True)
    examples = [SyntheticAudioQA(size=5)[i] for i in (0, 4)]  # different lengths -> left padding
    audios = [e.audio for e in examples] if policy.has_audio else None
    encoding = policy.encode_prompts(render_prompts(policy, examples, THINK), audios)
    torch.manual_seed(1)
    ids = policy.generate(encoding, GROUP, do_sample=True, max_new_tokens=7)
    return policy, encoding, ids, completion_mask(ids, policy.stop_token_ids())


def test_checkpointed_policy_keeps_the_shared_prompt_passes(checkpointed):
    policy = checkpointed[0]
    assert activation_checkpointing(policy.hf_model) and prompt_cache.checkpointed_layers(policy.hf_model)
    assert policy.shares_prompt_passes()


def test_shared_prompt_under_checkpointing_equals_the_full_pass(checkpointed):
    """Values and the gradient of every trainable parameter, with checkpointing on in both paths."""
    policy, encoding, ids, mask = checkpointed
    calls = []
    layers = prompt_cache.checkpointed_layers(policy.hf_model)
    originals = [layer._gradient_checkpointing_func for layer in layers]
    for layer in layers:  # count the layer checkpoints: the test proves checkpointing really ran in the shared path
        layer._gradient_checkpointing_func = counted(layer._gradient_checkpointing_func, calls)
    try:
        shared, shared_grads = logps_and_grads(policy, encoding, ids, mask, full=False)
    finally:
        for layer, original in zip(layers, originals, strict=True):
            layer._gradient_checkpointing_func = original
    full, full_grads = logps_and_grads(policy, encoding, ids, mask, full=True)
    decoder_layers = policy.hf_model.config.get_text_config().num_hidden_layers
    assert len(calls) == 2 * decoder_layers  # the prompt pass and the completion pass, every decoder layer
    assert torch.allclose(shared, full, atol=1e-5)
    assert shared_grads.keys() == full_grads.keys() and len(full_grads) > 0
    for name, grad in full_grads.items():
        assert torch.allclose(shared_grads[name], grad, atol=1e-5), name


def test_cache_layers_survive_a_replay():
    """A replayed prompt layer stores its states again (no doubling); the shared view stores nothing."""
    prompt = prompt_cache.PromptKVLayer()
    k, v = torch.randn(2, 1, 4, 3), torch.randn(2, 1, 4, 3)
    prompt.update(k, v)
    prompt.update(k, v)  # the replay
    assert prompt.get_seq_length() == 4
    shared = prompt_cache.SharedPromptLayer(prompt, group_size=2)
    new = torch.randn(4, 1, 5, 3)
    keys, _ = shared.update(new, new)
    keys_again, _ = shared.update(new, new)
    assert keys.shape == keys_again.shape == (4, 1, 9, 3) and shared.get_seq_length() == 4
    assert torch.equal(keys[1, :, :4], k[0]) and torch.equal(keys[2, :, :4], k[1])  # each prompt for its G samples
    assert shared.get_mask_sizes(5) == (9, 0)


def test_reentrant_checkpointing_falls_back_to_the_full_pass():
    """Reentrant checkpointing runs its first pass without a graph: cached prompt states would carry no gradient."""
    policy = load_policy("tiny-qwen2")
    assert policy.shares_prompt_passes()  # no checkpointing
    policy.hf_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    assert not policy.shares_prompt_passes()
    policy.hf_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert policy.shares_prompt_passes()
