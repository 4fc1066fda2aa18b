"""Two framework-free GRPO steps in plain torch + transformers: the naive loop and the tight floor.

Both take prompts tokenised (and clips featurised) up front, sample G completions of exactly C tokens per
prompt (the stop tokens masked), score them under the policy and the reference, and take one fused-AdamW step on
the same loss as ours (clipped ratio, k3 KL with TRL's bias correction, per-sequence mean).

- naive: `generate` with `num_return_sequences=G`, then full passes over prompt + completion for every sample:
  each prompt is prefilled G times and run G times in each log-prob pass (what a plain loop does).
- tight: each prompt prefilled once and its KV cache repeated G times, a minimal decode loop (forward + sampling,
  no `generate`), log-prob passes that run each prompt once for its G samples, the LM head on completion rows
  only; audio encoded once per example. This is the least work a step of this size needs: the denominator of
  "framework overhead". It shares only the replay-safe KV-cache containers with the library.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoProcessor, AutoTokenizer, DynamicCache
from transformers import Qwen2AudioForConditionalGeneration as AudioLM
from transformers.cache_utils import Cache

from audio_thinker.models.families import LM_PROJECTIONS, TEXT_PROJECTIONS
from audio_thinker.models.loading import DTYPES, disable_dropout
from audio_thinker.models.prompt_cache import CACHE_KWARG, PromptKVLayer, SharedPromptLayer, replayable_cache

from .workload import ADAM_BETAS, LORA, MAX_GRAD_NORM, StepShape, Workload

EPSILON = 0.2  # configs/loss/grpo.yaml


@dataclass(frozen=True)
class FloorBatch:
    """One step's prompts, prepared up front: ids [B, P] and, for audio, full-window features [B, mel, frames]."""

    input_ids: torch.Tensor
    features: torch.Tensor | None = None


@dataclass
class FloorModel:
    """A plain transformers model (LoRA through peft when the workload has it), its reference and fused AdamW."""

    workload: Workload
    model: nn.Module  # the trained module (a peft model under LoRA)
    hf: nn.Module  # the transformers model inside it
    reference: nn.Module | None  # a frozen copy (full fine-tuning with KL); None: adapters off, or no KL
    optimizer: torch.optim.Optimizer
    stop_ids: list[int]
    pad_id: int
    audio_token_id: int | None = None
    batches: list[FloorBatch] = field(default_factory=list)

    @contextlib.contextmanager
    def reference_model(self):
        """The transformers model that gives reference log-probs."""
        if self.reference is not None:
            yield self.reference
        else:
            with self.model.disable_adapter():
                yield self.hf

    def update(self, loss: torch.Tensor) -> None:
        """Backward, clip, fused AdamW step."""
        loss.backward()
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def load_floor(workload: Workload, prompts: list[str], audios: list | None, device: str) -> FloorModel:
    """The floor's own copy of the workload's model, set up for training as ours is, and its prompt batches."""
    kwargs = {"dtype": DTYPES[workload.dtype], "attn_implementation": "sdpa"}
    hf = (AudioLM if workload.audio else AutoModelForCausalLM).from_pretrained(workload.model, **kwargs).to(device)
    disable_dropout(hf)
    hf.train()
    if workload.checkpointing:
        enable_checkpointing(hf)
    model, reference = hf, None
    if workload.lora:
        from peft import LoraConfig, get_peft_model

        targets = LM_PROJECTIONS if workload.audio else TEXT_PROJECTIONS
        torch.manual_seed(workload.seed)
        model = get_peft_model(hf, LoraConfig(**LORA, target_modules=targets, task_type="CAUSAL_LM"))
    else:
        if workload.audio:
            hf.model.audio_tower.requires_grad_(False)  # the language model trains, as in ours (load_policy)
            hf.model.multi_modal_projector.requires_grad_(False)
        if workload.beta > 0:
            reference = copy.deepcopy(hf).requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=workload.lr, betas=ADAM_BETAS, weight_decay=0.0, fused=True)
    stop = hf.generation_config.eos_token_id
    stop_ids = [stop] if isinstance(stop, int) else list(stop)
    audio_token = getattr(hf.config, "audio_token_id", None)
    pad_id = hf.generation_config.pad_token_id
    batches = prepare_batches(workload, prompts, audios, device)
    return FloorModel(workload, model, hf, reference, optimizer, stop_ids, pad_id, audio_token, batches)


def enable_checkpointing(hf: nn.Module) -> None:
    """Non-reentrant activation checkpointing, as `load_policy` sets it (under this transformers' own name)."""
    if hasattr(hf, "activation_checkpointing_enable"):  # transformers >= 5.23
        hf.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    hf.config.use_cache = False  # as load_policy: the sampling loop asks for its cache explicitly


def prepare_batches(workload: Workload, prompts: list[str], audios: list | None, device: str) -> list[FloorBatch]:
    """Tokenise (and featurise) every step's prompts up front; they must share one length (no padding)."""
    b = workload.batch_size
    batches = []
    if workload.audio:
        processor = AutoProcessor.from_pretrained(workload.model)
        rate = processor.feature_extractor.sampling_rate
    else:
        processor = AutoTokenizer.from_pretrained(workload.model)
    for start in range(0, len(prompts) - b + 1, b):
        text = prompts[start : start + b]
        if workload.audio:
            out = processor(text=text, audio=audios[start : start + b], sampling_rate=rate, return_tensors="pt")
            if not bool(out["feature_attention_mask"].all()):
                raise ValueError("floor clips must fill the feature extractor's window (no padded frames)")
            features = out["input_features"].to(device, DTYPES[workload.dtype])
        else:
            out, features = processor(text, return_tensors="pt", add_special_tokens=False, padding=True), None
        if not bool(out["attention_mask"].all()):
            raise ValueError("floor prompts must all have one length (see workload.fixed_length_prompts)")
        batches.append(FloorBatch(out["input_ids"].to(device), features))
    return batches


# -- shared pieces ----------------------------------------------------------------------------------------
def encode_audio(floor: FloorModel, batch: FloorBatch) -> torch.Tensor | None:
    """Each example's clip through the (frozen) encoder and projector once: [B * 750, H] for 30 s clips."""
    if batch.features is None:
        return None
    inner = floor.hf.model
    with torch.no_grad():
        audio = inner.multi_modal_projector(inner.audio_tower(batch.features).last_hidden_state)  # [B, T, H]
    return audio.reshape(-1, audio.shape[-1])


def embed(model: nn.Module, batch: FloorBatch, audio: torch.Tensor | None, audio_token_id: int | None):
    """Prompt embeddings [B, P, H] with the encoded audio in the placeholder slots."""
    embeds = model.get_input_embeddings()(batch.input_ids)
    if audio is None:
        return embeds
    slots = (batch.input_ids == audio_token_id).unsqueeze(-1)
    return embeds.masked_scatter(slots, audio.to(embeds.dtype))


def sample_next(logits: torch.Tensor, stop_ids: list[int]) -> torch.Tensor:
    """One token per row from softmax(logits) (temperature 1, no top-k/top-p), the stop tokens masked: [N]."""
    logits = logits.float()
    logits[:, stop_ids] = -torch.inf  # forced length: min_new_tokens = max_new_tokens
    return torch.multinomial(torch.softmax(logits, dim=-1), 1).squeeze(-1)


def grpo_loss(logps: torch.Tensor, ref_logps: torch.Tensor | None, beta: float) -> torch.Tensor:
    """Our loss at μ = 1 (ratio 1 with its gradient), k3 KL times the ratio (TRL's bias correction)."""
    advantages = torch.randn(logps.shape[0], 1, device=logps.device)  # rewards do not change a step's cost
    ratio = torch.exp(logps - logps.detach())
    per_token = -torch.min(ratio * advantages, torch.clamp(ratio, 1 - EPSILON, 1 + EPSILON) * advantages)
    if ref_logps is not None:
        delta = ref_logps - logps
        per_token = per_token + beta * (torch.exp(delta) - delta - 1) * ratio
    return per_token.mean()  # every completion has C tokens: the per-sequence mean, averaged over sequences


def gather_logps(logits: torch.Tensor, completion: torch.Tensor) -> torch.Tensor:
    """log-softmax of [N, C, V] logits at the completion tokens: [N, C]."""
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)


# -- the tight floor --------------------------------------------------------------------------------------
@torch.no_grad()
def sample_tight(hf: nn.Module, prompt_embeds: torch.Tensor, group: int, length: int, stop_ids: list[int]):
    """Prefill each prompt once, repeat its KV cache G times, decode `length` tokens: [B*G, C]."""
    cache = DynamicCache(config=hf.config.get_text_config())
    out = hf(inputs_embeds=prompt_embeds, use_cache=True, logits_to_keep=1, **{CACHE_KWARG: cache})
    cache.batch_repeat_interleave(group)
    logits = out.logits[:, -1].repeat_interleave(group, dim=0)  # [N, V]
    tokens = []
    for step in range(length):
        tokens.append(sample_next(logits, stop_ids))
        if step + 1 < length:
            logits = hf(input_ids=tokens[-1][:, None], use_cache=True, **{CACHE_KWARG: cache}).logits[:, -1]
    return torch.stack(tokens, dim=1)


def tight_logps(hf: nn.Module, prompt_embeds: torch.Tensor, completion: torch.Tensor, group: int) -> torch.Tensor:
    """log π of each completion token [N, C]: the prompt runs once for its G samples, the head on completions only."""
    decoder, layers = hf.get_decoder(), hf.config.get_text_config().num_hidden_layers
    prompt_kv = [PromptKVLayer() for _ in range(layers)]
    with replayable_cache(hf):
        prompt = decoder(inputs_embeds=prompt_embeds, **{CACHE_KWARG: Cache(layers=prompt_kv)})
        shared = Cache(layers=[SharedPromptLayer(layer, group) for layer in prompt_kv])
        rest = decoder(input_ids=completion[:, :-1], **{CACHE_KWARG: shared}).last_hidden_state  # [N, C-1, H]
    first = prompt.last_hidden_state[:, -1:].repeat_interleave(group, dim=0)  # predicts completion token 0
    hidden = torch.cat([first, rest], dim=1)  # [N, C, H]
    return gather_logps(hf.get_output_embeddings()(hidden), completion)


def tight_step(floor: FloorModel, batch: FloorBatch) -> StepShape:
    """One tight-floor GRPO step."""
    w = floor.workload
    audio = encode_audio(floor, batch)
    embeds = embed(floor.hf, batch, audio, floor.audio_token_id)  # with grad when the embeddings train
    completion = sample_tight(floor.hf, embeds.detach(), w.group_size, w.new_tokens, floor.stop_ids)
    logps = tight_logps(floor.hf, embeds, completion, w.group_size)
    ref_logps = None
    if w.beta > 0:
        with torch.no_grad(), floor.reference_model() as reference:
            ref_embeds = embed(reference, batch, audio, floor.audio_token_id)
            ref_logps = tight_logps(reference, ref_embeds, completion, w.group_size)
    floor.update(grpo_loss(logps, ref_logps, w.beta))
    return StepShape(*batch.input_ids.shape, *completion.shape)


# -- the naive loop ---------------------------------------------------------------------------------------
def audio_inputs(batch: FloorBatch, group: int) -> dict:
    """The clips repeated for every sample (the naive loop re-encodes them in every pass)."""
    if batch.features is None:
        return {}
    features = batch.features.repeat_interleave(group, dim=0)
    mask = torch.ones(features.shape[0], features.shape[-1], dtype=torch.long, device=features.device)
    return {"input_features": features, "feature_attention_mask": mask}


def naive_logps(hf: nn.Module, batch: FloorBatch, completion: torch.Tensor, group: int) -> torch.Tensor:
    """log π of each completion token [N, C] from a full pass over prompt + completion for every sample."""
    ids = torch.cat([batch.input_ids.repeat_interleave(group, dim=0), completion], dim=1)
    length = completion.shape[1]
    out = hf(input_ids=ids, logits_to_keep=length + 1, **audio_inputs(batch, group))
    # Position p predicts token p+1 (some audio models return every position's logits: count from the end).
    return gather_logps(out.logits[:, -(length + 1) : -1], completion)


def naive_step(floor: FloorModel, batch: FloorBatch) -> StepShape:
    """One naive GRPO step: `generate` G copies of each prompt, full passes for every sample."""
    w = floor.workload
    with torch.no_grad():
        ids = floor.hf.generate(
            input_ids=batch.input_ids,
            attention_mask=torch.ones_like(batch.input_ids),
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            max_new_tokens=w.new_tokens,
            min_new_tokens=w.new_tokens,
            num_return_sequences=w.group_size,
            eos_token_id=floor.stop_ids,
            pad_token_id=floor.pad_id,
            **audio_inputs(batch, 1),
        )
    completion = ids[:, batch.input_ids.shape[1] :]
    logps = naive_logps(floor.hf, batch, completion, w.group_size)
    ref_logps = None
    if w.beta > 0:
        with torch.no_grad(), floor.reference_model() as reference:
            ref_logps = naive_logps(reference, batch, completion, w.group_size)
    floor.update(grpo_loss(logps, ref_logps, w.beta))
    return StepShape(*batch.input_ids.shape, *completion.shape)
