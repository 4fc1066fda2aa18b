"""`rollout.generation_kwargs`: honoured by transformers generate (hf), sent under vLLM's names (vllm), and a key an
engine cannot honour refused at start with what to do."""

from __future__ import annotations

import re

import pytest
import torch

import audio_thinker.train as train_module
from audio_thinker.config_checks import ConfigError
from audio_thinker.format.prompts import THINK
from audio_thinker.rollout.engine import SamplingSettings
from audio_thinker.rollout.engine_registry import engine_generation_kwargs
from audio_thinker.rollout.sampler import sample_rollout
from audio_thinker.rollout.vllm_engine import chat_request


@pytest.mark.parametrize(
    ("engine", "key", "message"),
    [
        ("hf", "repetiton_penalty", "is not a generate setting; did you mean 'repetition_penalty'?"),
        ("hf", "temperature", "rollout.generation_kwargs.temperature: not here: set rollout.temperature"),
        ("hf", "num_beams", "rollout.generation_kwargs.num_beams: is fixed by the rollout"),
        ("hf", "presence_penalty", "transformers generate (rollout.engine=hf) has no such setting; it is vLLM's"),
        ("vllm", "no_repeat_ngram_size", "vLLM's SamplingParams has no equivalent, so rollout.engine=vllm cannot"),
        ("vllm", "min_pp", "not a sampling setting the vllm engine knows; did you mean 'min_p'?"),
    ],
)
def test_a_key_the_engine_cannot_honour_is_refused_with_what_to_do(engine, key, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        engine_generation_kwargs(engine, {key: 1})


def test_each_engine_takes_the_settings_under_its_own_names_and_null_means_unset():
    settings = {"repetition_penalty": 1.1, "min_p": 0.05, "no_repeat_ngram_size": None}
    assert engine_generation_kwargs("hf", settings) == {"repetition_penalty": 1.1, "min_p": 0.05}
    vllm = engine_generation_kwargs("vllm", {**settings, "presence_penalty": 0.5})
    assert vllm == {"repetition_penalty": 1.1, "min_p": 0.05, "presence_penalty": 0.5}
    body = chat_request("PROMPT", None, 2, SamplingSettings(generation_kwargs=vllm), [2], [])
    assert (body["repetition_penalty"], body["min_p"], body["presence_penalty"]) == (1.1, 0.05, 0.5)


def test_a_misspelled_key_stops_train_before_the_model_loads(train_cfg, monkeypatch):
    monkeypatch.setattr(train_module, "build_module", lambda cfg: pytest.fail("the model was built first"))
    with pytest.raises(ConfigError, match="rollout.generation_kwargs.repetiton_penalty: is not a generate setting"):
        train_module.train(train_cfg(["+rollout.generation_kwargs.repetiton_penalty=1.1"]))


def _completions(policy, examples, **generation_kwargs) -> list[list[int]]:
    torch.manual_seed(0)
    sampling = SamplingSettings(max_new_tokens=24, generation_kwargs=generation_kwargs)
    rollout = sample_rollout(policy, examples, THINK, 4, sampling)
    pairs = zip(rollout.completion_ids, rollout.completion_mask, strict=True)
    return [ids[mask.bool()].tolist() for ids, mask in pairs]


def repeats(rows: list[list[int]]) -> int:
    """Tokens that occur again later in the same completion."""
    return sum(len(row) - len(set(row)) for row in rows)


@pytest.mark.filterwarnings("ignore:Passing `.*` with `inputs_embeds`")  # the prompt enters as embeddings
def test_the_hf_engine_samples_with_them(tiny_policy, val_examples):
    examples = val_examples[:2]
    plain = _completions(tiny_policy, examples)
    assert repeats(plain) > 4  # the tiny model repeats tokens ("a low tone, then a high tone")
    assert repeats(_completions(tiny_policy, examples, no_repeat_ngram_size=1)) == 0
    penalised = _completions(tiny_policy, examples, repetition_penalty=5.0)
    assert penalised != plain and repeats(penalised) < repeats(plain)
