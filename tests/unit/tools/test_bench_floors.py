"""The benchmark's floors and prompts on the tiny models: the tight floor computes what the naive floor does."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoProcessor, AutoTokenizer

from audio_thinker.embedded.architecture import TINY_AUDIO_SECONDS
from tools.bench import floors, models
from tools.bench.workload import FILLER, StepShape, Workload, check_shapes, fixed_length_prompts

GROUP, LENGTH = 3, 6


def floor_for(workload: Workload, count: int = 4) -> floors.FloorModel:
    processor = (AutoProcessor if workload.audio else AutoTokenizer).from_pretrained(workload.model)
    prompts = fixed_length_prompts(processor, workload, count)
    audios = [ex.audio for ex in prompts.examples] if workload.audio else None
    return floors.load_floor(workload, prompts.prompts, audios, "cpu")


@pytest.fixture(scope="module")
def text():
    return Workload(str(models.tiny(audio=False)), batch_size=2, group_size=GROUP, new_tokens=LENGTH)


def test_prompts_are_padded_to_one_length_with_filler_words(text):
    tokenizer = AutoTokenizer.from_pretrained(text.model)
    prompts = fixed_length_prompts(tokenizer, text, 6)
    lengths = {len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts.prompts}
    assert lengths == {prompts.text_tokens}
    assert any(FILLER * 2 in ex.question for ex in prompts.examples)  # the shorter ones were padded
    longer = fixed_length_prompts(tokenizer, Workload(text.model, prompt_tokens=prompts.text_tokens + 40), 2)
    assert longer.text_tokens == prompts.text_tokens + 40
    with pytest.raises(ValueError, match="shorter than the longest"):
        fixed_length_prompts(tokenizer, Workload(text.model, prompt_tokens=5), 2)


@pytest.mark.parametrize(
    "workload",
    [
        pytest.param({}, id="text"),
        pytest.param({"quant": "lora", "checkpointing": True}, id="text-lora-checkpointing"),
        pytest.param({"audio": True, "audio_seconds": TINY_AUDIO_SECONDS}, id="audio"),
    ],
)
def test_tight_floor_logprobs_equal_the_naive_floors(text, workload):
    """Prefill once + shared-prompt passes (tight) = G full passes (naive), values and gradients."""
    audio = workload.get("audio", False)
    w = Workload(str(models.tiny(audio)), batch_size=2, group_size=GROUP, new_tokens=LENGTH, **workload)
    floor = floor_for(w)
    batch = floor.batches[0]
    encoded = floors.encode_audio(floor, batch)
    embeds = floors.embed(floor.hf, batch, encoded, floor.audio_token_id)
    torch.manual_seed(0)
    completion = floors.sample_tight(floor.hf, embeds.detach(), GROUP, LENGTH, floor.stop_ids)
    assert completion.shape == (2 * GROUP, LENGTH) and not torch.isin(completion, torch.tensor(floor.stop_ids)).any()
    params = [p for p in floor.model.parameters() if p.requires_grad]
    tight = floors.tight_logps(floor.hf, embeds, completion, GROUP)
    naive = floors.naive_logps(floor.hf, batch, completion, GROUP)
    assert torch.allclose(tight, naive, atol=1e-5)
    tight_grads = torch.autograd.grad(tight.sum(), params, allow_unused=True)
    naive_grads = torch.autograd.grad(naive.sum(), params, allow_unused=True)
    for a, b in zip(tight_grads, naive_grads, strict=True):
        assert (a is None and b is None) or torch.allclose(a, b, atol=1e-4)


def test_both_floor_steps_train_on_the_same_shapes(text):
    floor = floor_for(text)
    before = [p.detach().clone() for p in floor.model.parameters()]
    tight = floors.tight_step(floor, floor.batches[0])
    naive = floors.naive_step(floor, floor.batches[1])
    prompt_len = floor.batches[0].input_ids.shape[1]
    assert tight == naive == StepShape(2, prompt_len, 2 * GROUP, LENGTH)
    assert all(not torch.equal(a, b) for a, b in zip(before, floor.model.parameters(), strict=True))
    check_shapes("floors", [tight, naive], tight)
    with pytest.raises(AssertionError, match=r"ours: steps ran on \[StepShape"):
        check_shapes("ours", [tight, tight._replace(completion_len=LENGTH - 1)], tight)


def test_lora_floor_trains_adapters_only_and_references_the_base(text):
    floor = floor_for(Workload(text.model, batch_size=2, group_size=GROUP, new_tokens=LENGTH, quant="lora"))
    trained = {n for n, p in floor.model.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in n for n in trained) and floor.reference is None
    embeds = floors.embed(floor.hf, floor.batches[0], None, None)
    completion = floors.sample_tight(floor.hf, embeds, GROUP, LENGTH, floor.stop_ids)
    with torch.no_grad():
        base = floors.tight_logps(floor.hf, embeds, completion, GROUP)  # fresh adapters add nothing yet
        for p in floor.model.parameters():
            if p.requires_grad:
                p.normal_(0, 0.5)
        policy = floors.tight_logps(floor.hf, embeds, completion, GROUP)
        with floor.reference_model() as reference:
            ref = floors.tight_logps(reference, embeds, completion, GROUP)
    assert torch.allclose(ref, base, atol=1e-6) and not torch.allclose(policy, base, atol=1e-3)
