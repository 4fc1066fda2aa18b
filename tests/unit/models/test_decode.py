"""The lean decoding loop samples exactly the tokens transformers `generate` samples, for every setting it takes."""

from __future__ import annotations

import contextlib

import pytest
import torch
from transformers import Qwen2ForCausalLM

from audio_thinker.checkpoints.finite_weights import DivergenceError
from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.format.prompts import THINK
from audio_thinker.models import decode
from audio_thinker.models.decode import lean_settings
from audio_thinker.models.loading import load_policy
from audio_thinker.models.policy import Policy, PromptEncoding, render_prompts

SAMPLED = {"do_sample": True, "temperature": 1.0, "top_p": 1.0, "top_k": 0, "max_new_tokens": 8}
SETTINGS = {
    "plain": {},
    "top_k, top_p, temperature": {"temperature": 0.7, "top_k": 20, "top_p": 0.9},
    "min_new_tokens": {"min_new_tokens": 8},
    "repetition_penalty": {"repetition_penalty": 1.3},
    "min_p": {"min_p": 0.1},
    "the engine's nulls": {"repetition_penalty": None, "min_p": None, "min_new_tokens": None},
}
GREEDY = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None, "max_new_tokens": 8}


@pytest.fixture(scope="module")
def text_policy() -> Policy:
    return load_policy("tiny-qwen2")


def encode(policy: Policy, indices: tuple[int, ...] = (0, 4)) -> PromptEncoding:
    """Prompts of examples `indices` ((0, 4): clips and questions of different lengths, so left padded)."""
    examples = [SyntheticAudioQA(size=5)[i] for i in indices]
    audios = [e.audio for e in examples] if policy.has_audio else None
    return policy.encode_prompts(render_prompts(policy, examples, THINK), audios)


def lean_and_generate(policy: Policy, encoding: PromptEncoding, monkeypatch, group: int = 3, **kwargs):
    """The same draw (seed 0) through the lean loop (generate made to fail) and through transformers `generate`."""
    with monkeypatch.context() as patch:
        patch.setattr(policy.hf_model, "generate", lambda **_: pytest.fail("the lean loop called generate"))
        torch.manual_seed(0)
        lean = policy.generate(encoding, group, **kwargs)
    with monkeypatch.context() as patch:
        patch.setattr(policy, "decodes_lean", False)
        torch.manual_seed(0)
        plain = policy.generate(encoding, group, **kwargs)
    return lean, plain


@pytest.mark.filterwarnings("ignore:Passing `repetition_penalty`")  # generate's note: the prompt is embeddings
@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("indices", [(0, 4), (0, 0)], ids=["left padded", "unpadded"])
def test_the_lean_loop_samples_the_tokens_generate_samples(text_policy, tiny_policy, setting, indices, monkeypatch):
    for policy in (text_policy, tiny_policy):
        encoding = encode(policy, indices)
        assert bool(encoding.attention_mask.all()) == (indices == (0, 0))
        lean, plain = lean_and_generate(policy, encoding, monkeypatch, **{**SAMPLED, **SETTINGS[setting]})
        assert torch.equal(lean, plain), (type(policy).__name__, setting)


def test_greedy_decoding_and_the_budget_path_without_a_cache_match_generate(tiny_policy, monkeypatch):
    encoding = encode(tiny_policy)
    lean, plain = lean_and_generate(tiny_policy, encoding, monkeypatch, group=1, **GREEDY)
    assert torch.equal(lean, plain)
    embeds = tiny_policy.embed_prompts(encoding)  # continue_embeddings as budget forcing calls it: no cache
    lean = tiny_policy.continue_embeddings(embeds, encoding.attention_mask, **GREEDY)
    with monkeypatch.context() as patch:
        patch.setattr(tiny_policy, "decodes_lean", False)
        plain = tiny_policy.continue_embeddings(embeds, encoding.attention_mask, **GREEDY)
    assert torch.equal(lean, plain)


@contextlib.contextmanager
def likely_stop(policy: Policy, bias: float = 4.0):
    """The policy's first stop token made likely, so rows end at different steps."""
    head = policy.hf_model.get_output_embeddings()
    shift = torch.zeros(head.out_features)
    shift[policy.stop_token_ids()[0]] = bias
    handle = head.register_forward_hook(lambda _m, _i, out: out + shift)
    try:
        yield
    finally:
        handle.remove()


def test_rows_stop_at_their_own_stop_token_and_the_loop_ends_when_all_have(tiny_policy, monkeypatch):
    with likely_stop(tiny_policy):
        lean, plain = lean_and_generate(
            tiny_policy, encode(tiny_policy), monkeypatch, 4, **{**SAMPLED, "max_new_tokens": 40}
        )
    assert torch.equal(lean, plain)
    stop, pad = tiny_policy.stop_token_ids()[0], tiny_policy.tokenizer.pad_token_id
    ends = [row.tolist().index(stop) for row in lean]
    assert len(set(ends)) > 1 and lean.shape[1] == max(ends) + 1 < 40
    assert all((row[end + 1 :] == pad).all() for row, end in zip(lean, ends, strict=True))


def test_a_rank_done_first_keeps_running_forwards_until_its_peers_are_done(tiny_policy, monkeypatch):
    """Under FSDP or ZeRO-3 every forward gathers weights on all ranks: a finished rank must keep stepping."""
    forwards, heads = [], []
    handle = tiny_policy.hf_model.get_decoder().register_forward_hook(lambda *_: forwards.append(1))
    head = tiny_policy.hf_model.get_output_embeddings().register_forward_hook(lambda *_: heads.append(1))
    kwargs, encoding, runs = {**SAMPLED, "max_new_tokens": 40}, encode(tiny_policy), []
    try:
        for peers_lag in (0, 3):
            lag = iter(range(peers_lag, -1, -1))
            monkeypatch.setattr(decode, "ranks_in_step", lambda _lm: True)
            monkeypatch.setattr(decode, "all_ranks_done", lambda done, *_, lag=lag: done and next(lag) == 0)
            forwards.clear()
            heads.clear()
            torch.manual_seed(0)
            with likely_stop(tiny_policy):
                runs.append((tiny_policy.generate(encoding, 4, **kwargs), len(forwards), len(heads)))
    finally:
        handle.remove()
        head.remove()
    (alone, steps, alone_heads), (with_peers, more_steps, more_heads) = runs
    assert torch.equal(alone, with_peers) and more_steps == steps + 3 and steps == alone.shape[1] + 1  # + prefill
    assert alone_heads == alone.shape[1] and more_heads == alone_heads + 3  # the head gathers weights too


def test_the_omni_thinker_decodes_lean_with_the_same_tokens(monkeypatch):
    """Qwen2.5-Omni's 3-D rotary positions are sequential for audio: the lean loop's plain positions match."""
    omni = load_policy("tiny-qwen2_5-omni")
    lean, plain = lean_and_generate(omni, encode(omni), monkeypatch, group=2, **{**SAMPLED, "top_k": 20})
    assert torch.equal(lean, plain)


@pytest.mark.filterwarnings("ignore:Passing `no_repeat_ngram_size`")
def test_settings_the_loop_lacks_fall_back_to_generate(tiny_policy, monkeypatch):
    model = tiny_policy.hf_model
    assert lean_settings(model, {**SAMPLED, "repetition_penalty": 1.2}) is not None
    assert lean_settings(model, {**SAMPLED, "no_repeat_ngram_size": 2}) is None  # a key it does not take
    monkeypatch.setattr(model.generation_config, "typical_p", 0.5)  # a checkpoint's default it does not implement
    assert lean_settings(model, SAMPLED) is None
    monkeypatch.undo()
    calls = []
    generate = model.generate
    monkeypatch.setattr(model, "generate", lambda **kw: calls.append(kw) or generate(**kw))
    ids = tiny_policy.generate(encode(tiny_policy), 2, **SAMPLED, no_repeat_ngram_size=1)
    assert len(calls) == 1 and ids.shape[0] == 4
    for row in ids.tolist():  # honoured: no token twice before the stop
        kept = row[: row.index(tiny_policy.stop_token_ids()[0])] if tiny_policy.stop_token_ids()[0] in row else row
        assert len(set(kept)) == len(kept)


def test_nan_scores_in_the_lean_loop_raise_a_divergence_error(monkeypatch):
    policy = load_policy("tiny-qwen2")  # its own copy: the weights are broken here
    with torch.no_grad():
        policy.hf_model.get_output_embeddings().weight.fill_(float("nan"))
    monkeypatch.setattr(policy.hf_model, "generate", lambda **_: pytest.fail("the lean loop called generate"))
    with pytest.raises(DivergenceError, match="optimizer.lr"):
        policy.generate(encode(policy), 2, **SAMPLED)


def test_generation_on_another_copy_of_the_language_model(tiny_policy, monkeypatch):
    """`lm`: a plain causal LM holding the audio policy's text weights samples what the policy itself samples."""
    text_config = tiny_policy.hf_model.config.text_config
    lm = Qwen2ForCausalLM(text_config).eval()
    lm.model.load_state_dict(tiny_policy.hf_model.model.language_model.state_dict())
    lm.lm_head.load_state_dict(tiny_policy.hf_model.lm_head.state_dict())
    lm.generation_config = tiny_policy.hf_model.generation_config
    calls = []
    lm.get_decoder().register_forward_hook(lambda *_: calls.append(1))
    encoding = encode(tiny_policy)
    torch.manual_seed(0)
    own = tiny_policy.generate(encoding, 3, **SAMPLED)
    monkeypatch.setattr(tiny_policy.hf_model, "forward", lambda *a, **k: pytest.fail("ran the policy's model"))
    monkeypatch.setattr(tiny_policy.hf_model.get_decoder(), "forward", lambda *a, **k: pytest.fail("policy decoder"))
    torch.manual_seed(0)
    other = tiny_policy.generate(encoding, 3, lm=lm, **SAMPLED)
    assert torch.equal(own, other) and len(calls) == SAMPLED["max_new_tokens"] + 1  # prefill + one per token


def test_the_loop_reports_the_log_probs_of_what_it_drew_under_the_processed_scores(text_policy):
    """After temperature the drawn tokens' log-probs are the trainer's (its passes divide by the temperature too);
    top-k then renormalises the distribution the loop draws from, so a token's log-prob can only rise."""
    encoding = encode(text_policy)
    for extra, same in (({"temperature": 0.7}, True), ({"temperature": 0.7, "top_k": 5}, False)):
        logps: list[torch.Tensor] = []
        torch.manual_seed(0)
        ids = text_policy.generate(encoding, 2, sampling_logps=logps, **{**SAMPLED, **extra})
        sampled = torch.stack(logps, dim=1)
        assert sampled.shape == ids.shape
        mask = torch.ones_like(ids, dtype=torch.bool)  # no stop in 8 tokens is not guaranteed: compare real ones
        stops = torch.isin(ids, torch.tensor(text_policy.stop_token_ids()))
        mask &= (stops.cumsum(dim=1) - stops.long()) == 0
        trainer = text_policy.completion_logps(encoding, ids, mask.long(), temperature=0.7)
        if same:
            assert torch.allclose(sampled[mask], trainer[mask], atol=1e-4)
        else:
            assert (sampled[mask] >= trainer[mask] - 1e-4).all() and (sampled[mask] > trainer[mask] + 1e-3).any()


def test_the_log_probs_after_a_rows_stop_are_zero_not_minus_infinity(tiny_policy):
    """A stopped row is padded; top-k may have removed the pad token, whose log-prob would be -inf."""
    logps: list[torch.Tensor] = []
    torch.manual_seed(0)
    with likely_stop(tiny_policy):
        ids = tiny_policy.generate(
            encode(tiny_policy), 4, sampling_logps=logps, **{**SAMPLED, "top_k": 3, "max_new_tokens": 40}
        )
    sampled = torch.stack(logps, dim=1)
    stops = torch.isin(ids, torch.tensor(tiny_policy.stop_token_ids()))
    after_stop = (stops.cumsum(dim=1) - stops.long()) > 0
    assert after_stop.any() and torch.isfinite(sampled).all() and (sampled[after_stop] == 0).all()
