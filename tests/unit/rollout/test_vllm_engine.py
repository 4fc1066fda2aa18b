"""The `vllm` engine's requests, replies, weight sync and faults, against a fake vLLM server (no vLLM needed)."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import jinja2
import numpy as np
import pytest
import soundfile
import torch
from safetensors.torch import load_file

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.format.prompts import DIRECT
from audio_thinker.models.loading import load_policy
from audio_thinker.rollout.engine import SamplingSettings, logprob_mismatch
from audio_thinker.rollout.engine_registry import build_engine
from audio_thinker.rollout.sampler import sample_rollout
from audio_thinker.rollout.server import ServerSettings, gpu_flags
from audio_thinker.rollout.vllm_engine import (
    VERBATIM_TEMPLATE,
    BadReply,
    ServerError,
    VLLMEngine,
    chat_request,
    check_supported,
    pad_samples,
    parse_choices,
    wav_base64,
)
from audio_thinker.rollout.weight_sync import write_model_files
from tests.helpers.fake_vllm_server import FakeVLLM

SAMPLING = SamplingSettings(max_new_tokens=4, temperature=0.7, top_p=0.9, top_k=5, min_new_tokens=1)


@pytest.fixture(scope="module")
def policy():
    return load_policy("tiny-qwen2")


@pytest.fixture
def fake(policy, tmp_path):
    policy.hf_model.config.to_json_file(tmp_path / "config.json")  # the server "serves" the policy's model
    server = FakeVLLM(str(tmp_path)).start()
    yield server
    server.stop()


def engine_for(fake: FakeVLLM, tmp_path, **settings) -> VLLMEngine:
    return VLLMEngine(ServerSettings(url=fake.url, weights_dir=str(tmp_path / "weights"), **settings))


# -- requests and replies --------------------------------------------------------------------------------------
@pytest.mark.parametrize("audio", [True, False])
def test_verbatim_template_renders_the_trainers_prompt_unchanged(audio):
    prompt = "<|im_start|>user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nWhich?<|im_end|>\n<|im_start|>assistant\n"
    content = [{"type": "audio"}, {"type": "text", "text": prompt}] if audio else prompt  # as vLLM hands them over
    rendered = jinja2.Template(VERBATIM_TEMPLATE).render(messages=[{"role": "user", "content": content}])
    assert rendered == prompt


def test_chat_request_asks_for_g_samples_with_the_rollout_settings():
    body = chat_request("PROMPT", "V0FW", 8, SAMPLING, stop_ids=[2, 0], banned_ids=[7, 9])
    audio, text = body["messages"][0]["content"]
    assert audio == {"type": "input_audio", "input_audio": {"data": "V0FW", "format": "wav"}}
    assert text == {"type": "text", "text": "PROMPT"} and body["add_generation_prompt"] is False
    assert (body["n"], body["max_tokens"], body["min_tokens"]) == (8, 4, 1)
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.7, 0.9, 5)
    assert body["stop_token_ids"] == [2, 0] and body["logit_bias"] == {"7": -100, "9": -100}
    assert body["logprobs"] and body["return_token_ids"] and not body["skip_special_tokens"]
    assert len(chat_request("PROMPT", None, 2, SAMPLING, [2], [])["messages"][0]["content"]) == 1  # text only


def test_audio_travels_as_lossless_float_wav():
    wave = np.random.default_rng(0).uniform(-1, 1, 16_000).astype(np.float64)
    decoded, rate = soundfile.read(io.BytesIO(base64.b64decode(wav_base64(wave, 16_000))), dtype="float32")
    assert rate == 16_000 and np.array_equal(decoded, wave.astype(np.float32))


def test_replies_are_read_in_sample_order_and_garbage_is_rejected():
    def choice(index, ids, logps):
        return {"index": index, "token_ids": ids, "logprobs": {"content": [{"logprob": p} for p in logps]}}

    reply = {"choices": [choice(1, [4, 2], [-0.5, -0.1]), choice(0, [3], [-1.0])]}
    assert parse_choices(reply, 2, 4, 10) == [([3], [-1.0]), ([4, 2], [-0.5, -0.1])]
    bad = [
        ({"detail": "oops"}, "malformed"),
        ({"choices": [choice(0, [3], [-1.0])]}, "asked for 2 samples, got 1"),
        ({"choices": [choice(0, [3], [-1.0]), choice(1, [12], [-1.0])]}, "out of the vocabulary"),
        ({"choices": [choice(0, [3, 4], [-1.0]), choice(1, [3], [-1.0])]}, "2 tokens and 1 log-probs"),
        ({"choices": [choice(0, [], []), choice(1, [3], [-1.0])]}, "0 tokens"),
    ]
    for reply, message in bad:
        with pytest.raises(BadReply, match=message):
            parse_choices(reply, 2, 4, 10)


def test_samples_are_padded_after_their_end():
    out = pad_samples([([3], [-1.0]), ([4, 2], [-0.5, -0.1])], pad_id=0)
    assert out.ids.tolist() == [[3, 0], [4, 2]]
    assert torch.equal(out.logps, torch.tensor([[-1.0, 0.0], [-0.5, -0.1]]))


def test_logprob_mismatch_is_the_mean_gap_over_completion_tokens():
    trainer = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, -9.0]])
    sampler = torch.tensor([[-1.5, -2.0, -7.0], [-0.25, -1.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert logprob_mismatch(trainer, sampler, mask) == pytest.approx((0.5 + 0 + 0.25 + 0.5 + 9.0) / 5)


def test_unknown_server_key_names_the_known_ones():
    with pytest.raises(ValueError, match=r"rollout.server has unknown keys \['prot'\].*'port'"):
        build_engine("vllm", {"prot": 8000})
    assert isinstance(build_engine("vllm", {"port": 8000}), VLLMEngine)


# -- weight sync and sampling against the fake server ------------------------------------------------------------
def test_sync_streams_the_weights_and_resets_both_caches(policy, fake, tmp_path):
    engine = engine_for(fake, tmp_path)
    with torch.no_grad():
        policy.hf_model.lm_head.weight[0, 0] += 1.0  # an "optimizer step"
    try:
        engine.sync_weights(policy)
        engine.sync_weights(policy)
        assert torch.equal(fake.weights["lm_head.weight"], policy.hf_model.lm_head.weight)
    finally:
        with torch.no_grad():
            policy.hf_model.lm_head.weight[0, 0] -= 1.0
        engine.close()
    assert fake.paths() == ["/v1/models"] + ["/collective_rpc", "/reset_prefix_cache", "/reset_encoder_cache"] * 2
    rpc = [body for _, path, body in fake.requests if path == "/collective_rpc"]
    assert [r["method"] for r in rpc] == ["receive_weights"] * 2
    assert set(fake.weights) == set(policy.hf_model.state_dict())  # every weight, under its checkpoint name
    assert not list(tmp_path.glob("weights/*/*.safetensors"))  # nothing written but the shared-memory bucket


def test_file_sync_writes_the_weights_reloads_them_and_resets_both_caches(policy, fake, tmp_path):
    engine = engine_for(fake, tmp_path, weight_sync="files")
    try:
        engine.sync_weights(policy)
        engine.sync_weights(policy)
    finally:
        engine.close()
    assert fake.paths() == ["/v1/models"] + ["/collective_rpc", "/reset_prefix_cache", "/reset_encoder_cache"] * 2
    rpc = [body for _, path, body in fake.requests if path == "/collective_rpc"]
    assert [r["method"] for r in rpc] == ["reload_weights"] * 2
    first, second = (r["kwargs"]["weights_path"] for r in rpc)
    assert first != second  # a fresh directory per sync


def test_file_synced_weights_are_the_policys_current_weights(policy, fake, tmp_path):
    engine = engine_for(fake, tmp_path, weight_sync="files")
    with torch.no_grad():
        policy.hf_model.lm_head.weight[0, 0] += 1.0  # an "optimizer step"
    try:
        engine.sync_weights(policy)
        path = fake.requests[-3][2]["kwargs"]["weights_path"]
        saved = load_file(f"{path}/model.safetensors")
        assert torch.equal(saved["lm_head.weight"], policy.hf_model.lm_head.weight)
        assert json.loads(Path(path, "config.json").read_text())["model_type"] == "qwen2"
    finally:
        with torch.no_grad():
            policy.hf_model.lm_head.weight[0, 0] -= 1.0
        engine.close()


def test_generation_returns_every_sample_with_its_logprobs(policy, fake, tmp_path):
    engine = engine_for(fake, tmp_path)
    examples = [SyntheticAudioQA(size=3)[i] for i in range(3)]
    try:
        engine.sync_weights(policy)
        rollout = sample_rollout(policy, examples, DIRECT, 2, SAMPLING, engine)
    finally:
        engine.close()
    stop = policy.stop_token_ids()[0]
    assert rollout.completion_ids.tolist() == [[5, 6, 6, stop], [6, 6, 6, stop]] * 3  # the fake's samples 0 and 1
    assert rollout.completion_mask.tolist() == [[1, 1, 1, 1]] * 6
    assert rollout.sampling_logps.tolist() == [[-0.25, -0.5, -0.75, -1.0]] * 6
    chats = [body for _, path, body in fake.requests if path == "/v1/chat/completions"]
    assert len(chats) == 3 and {body["model"] for body in chats} == {"fake-model"}


@pytest.mark.parametrize("mode", ["garbage", "too_few", "out_of_vocab", "500", "hang"])
def test_bad_answers_are_retried_then_stop_the_run_with_a_clear_error(policy, fake, tmp_path, mode):
    engine = engine_for(fake, tmp_path, retries=1, request_timeout_s=1)
    engine.sync_weights(policy)
    fake.mode = mode
    try:
        reason = "ReadTimeout" if mode == "hang" else ""
        with pytest.raises(
            ServerError, match=rf"{fake.url} failed POST /v1/chat/completions after 2 attempts: {reason}"
        ):
            sample_rollout(policy, [SyntheticAudioQA(size=1)[0]], DIRECT, 2, SAMPLING, engine)
    finally:
        engine.close()
    assert fake.paths().count("/v1/chat/completions") == 2


def test_a_server_that_went_away_fails_within_the_retries(policy, fake, tmp_path):
    engine = engine_for(fake, tmp_path, retries=1, request_timeout_s=5)
    engine.sync_weights(policy)
    fake.stop()
    start = time.monotonic()
    try:
        with pytest.raises(ServerError, match="ConnectError.*check that server"):
            sample_rollout(policy, [SyntheticAudioQA(size=1)[0]], DIRECT, 2, SAMPLING, engine)
    finally:
        engine.close()
    assert time.monotonic() - start < 30


def test_a_server_of_another_model_is_refused(policy, tmp_path):
    other = policy.hf_model.config.to_dict() | {"num_hidden_layers": 7}
    (tmp_path / "config.json").write_text(json.dumps(other))
    fake = FakeVLLM(str(tmp_path)).start()
    try:
        with pytest.raises(ValueError, match=r"serves .*'num_hidden_layers': 7.*not the policy's model"):
            engine_for(fake, tmp_path).sync_weights(policy)
    finally:
        fake.stop()


def test_a_refused_request_is_not_retried(policy, fake, tmp_path):
    engine = engine_for(fake, tmp_path)
    engine.sync_weights(policy)
    engine.client.http.close()
    engine.client.http = __import__("httpx").Client(timeout=5)
    with pytest.raises(ServerError, match=r"refused GET /no/such/path \(404\)"):
        engine.client.call("GET", "/no/such/path")
    assert fake.paths().count("/no/such/path") == 1
    engine.close()


def test_omni_policies_are_refused_naming_the_hf_engine():
    with pytest.raises(ValueError, match="does not support Qwen2.5-Omni.*use rollout.engine=hf"):
        check_supported(type(load_policy("tiny-qwen2_5-omni")))


def test_a_qlora_policy_is_served_from_its_dequantised_bf16_base(fake, tmp_path):
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig

    nf4 = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    qlora = load_policy("tiny-qwen2", lora=LoraConfig(r=4, lora_alpha=8, target_modules=None), quantization=nf4)
    engine = engine_for(fake, tmp_path)
    try:
        engine.sync_weights(qlora)
    finally:
        engine.close()
    assert fake.weights and all(value.dtype == torch.bfloat16 for value in fake.weights.values())
    assert not [name for name in fake.weights if "lora_" in name or "base_layer" in name or "quant" in name]
    config = json.loads((write_model_files(qlora, tmp_path / "start") / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "bfloat16"  # vLLM has no bitsandbytes backend


# -- sleep mode (GPU only in vLLM: its call order is checked here) ---------------------------------------------------
def test_sleep_mode_wakes_syncs_generates_and_sleeps_each_generation(policy, fake, tmp_path):
    engine = engine_for(fake, tmp_path, sleep=True)
    example = [SyntheticAudioQA(size=1)[0]]
    try:
        engine.sync_weights(policy)  # the first sync: the server is awake
        sample_rollout(policy, example, DIRECT, 2, SAMPLING, engine)
        engine.sync_weights(policy)  # after an optimizer step
        sample_rollout(policy, example, DIRECT, 2, SAMPLING, engine)
        sample_rollout(policy, example, DIRECT, 2, SAMPLING, engine)  # no step in between: level 2 dropped the weights
    finally:
        engine.close()
    sync, resets, chat = "/collective_rpc", ["/reset_prefix_cache", "/reset_encoder_cache"], "/v1/chat/completions"
    wake, sleep = ["/wake_up?tags=weights", sync], ["/wake_up?tags=kv_cache", *resets, chat, "/sleep?level=2"]
    assert fake.paths() == ["/v1/models", sync, *resets, chat, "/sleep?level=2", *wake, *sleep, *wake, *sleep]


def test_gpu_flags_are_cuda_graphs_and_sleep_on_a_gpu_eager_on_a_cpu():
    assert gpu_flags(ServerSettings(gpu_memory_utilization=0.3), on_gpu=False) == ["--enforce-eager"]
    on_gpu = gpu_flags(ServerSettings(gpu_memory_utilization=0.3), on_gpu=True)
    assert on_gpu == ["--gpu-memory-utilization", "0.3", "--enable-sleep-mode"]
    assert gpu_flags(ServerSettings(enforce_eager=True, sleep=False), on_gpu=True) == ["--enforce-eager"]


def test_a_failed_generation_is_reported_even_when_putting_the_server_to_sleep_fails_too(
    policy, fake, tmp_path, monkeypatch, caplog
):
    engine = engine_for(fake, tmp_path, sleep=True)
    try:
        engine.sync_weights(policy)
        monkeypatch.setattr(engine, "_sample", lambda *_: (_ for _ in ()).throw(ServerError("the sampling failed")))
        monkeypatch.setattr(engine.sleep, "sleep", lambda: (_ for _ in ()).throw(ServerError("sleep failed")))
        with pytest.raises(ServerError, match="the sampling failed"):
            sample_rollout(policy, [SyntheticAudioQA(size=1)[0]], DIRECT, 2, SAMPLING, engine)
    finally:
        monkeypatch.undo()
        engine.close()
    assert "sleep failed" in caplog.text
