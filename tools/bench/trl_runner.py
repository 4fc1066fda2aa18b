"""TRL's GRPOTrainer on the same workload, as strong as a user would configure it, timed by a TrainerCallback.

Matched to ours: model directory, prompts, B, G, forced completion length, sampling, β, loss (`grpo`, k3 KL with
`use_bias_correction_kl`, its default), no old-policy pass (μ = 1), fused AdamW with the same settings, LoRA and
activation checkpointing when the workload has them, logging, checkpoints and evaluation off. Variants:

- `trl`: TRL as it runs on this device.
- `trl-compact`: on a CPU, TRL scores every prompt position through the LM head (its compact path, which scores
  completion positions only, is enabled on CUDA/XPU with Triton); this variant turns the compact path on, as a
  GPU user gets it. On CUDA it is the same as `trl`.
- `trl-compile`: `torch_compile=True` on top of the compact LM head.
- `trl-vllm`: `use_vllm=True` against a running `trl vllm-serve` (server mode), with `--vllm-server URL`.

TRL's own profiling spans (`profiling/Time taken: ...`) are collected per measured step to attribute its time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections import defaultdict

from transformers import AutoTokenizer

from audio_thinker.models.families import TEXT_PROJECTIONS

from .pairing import PairedFloor, Run
from .stats import Stopwatch
from .workload import ADAM_BETAS, LORA, MAX_GRAD_NORM, PromptSet, StepShape, Workload

VARIANTS = ("trl", "trl-compact", "trl-compile", "trl-vllm")


def variant_settings(variant: str, vllm_server: str | None) -> dict:
    """GRPOConfig fields a variant sets on top of the shared ones."""
    if variant == "trl-compile":
        return {"torch_compile": True}
    if variant == "trl-vllm":
        if not vllm_server:
            raise SystemExit("trl-vllm needs --vllm-server URL (a running `trl vllm-serve --model <model dir>`)")
        return {"use_vllm": True, "vllm_mode": "server", "vllm_server_base_url": vllm_server}
    if variant not in VARIANTS:
        raise SystemExit(f"unknown TRL variant {variant!r}; choose from {', '.join(VARIANTS)}")
    return {}


def grpo_config(workload: Workload, total_steps: int, device: str, output_dir: str, extra: dict):
    """The GRPOConfig of the shared workload."""
    from trl import GRPOConfig

    w = workload
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    # transformers >= 5.23 renamed gradient checkpointing to activation checkpointing (the old name warns).
    ckpt = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
    return GRPOConfig(
        output_dir=output_dir,
        per_device_train_batch_size=w.completions,  # TRL counts completions, not prompts
        num_generations=w.group_size,
        max_completion_length=w.new_tokens,
        generation_kwargs={"min_new_tokens": w.new_tokens},
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        beta=w.beta,
        loss_type="grpo",
        scale_rewards="group",
        num_iterations=1,
        use_bias_correction_kl=True,
        learning_rate=w.lr,
        optim="adamw_torch_fused",
        adam_beta1=ADAM_BETAS[0],
        adam_beta2=ADAM_BETAS[1],
        weight_decay=0.0,
        lr_scheduler_type="constant",
        max_grad_norm=MAX_GRAD_NORM,
        max_steps=total_steps,
        **{ckpt: w.checkpointing, f"{ckpt}_kwargs": {"use_reentrant": False}},
        bf16=w.dtype == "bfloat16",
        fp16=False,
        use_cpu=not device.startswith("cuda"),
        model_init_kwargs={"dtype": w.dtype, "attn_implementation": "sdpa"},
        disable_dropout=True,
        # The same bookkeeping budget as ours: no logging backend, checkpoints, evaluation or progress bar.
        report_to="none",
        logging_steps=10**9,
        save_strategy="no",
        eval_strategy="no",
        disable_tqdm=True,
        log_completions=False,
        seed=w.seed,
        dataloader_num_workers=0,
        **extra,
    )


@contextlib.contextmanager
def compact_lm_head(on: bool):
    """Score completion positions only through TRL's LM head (its CUDA/XPU path) on any device."""
    if not on:
        yield
        return
    import trl.trainer.utils as trl_utils

    original = trl_utils._use_triton  # the kernels keep their own reference: they still fold tiles in torch
    trl_utils._use_triton = lambda device: True
    try:
        yield
    finally:
        trl_utils._use_triton = original


@contextlib.contextmanager
def trl_phases(sink: dict[str, float], active: list[bool]):
    """Collect TRL's own profiling spans (seconds by name) while `active[0]` is true."""
    from trl.extras.profiling import ProfilingContext

    original = ProfilingContext._log_metrics

    def record(self, duration: float) -> None:
        if active[0]:
            sink[self.name] += duration
        original(self, duration)

    ProfilingContext._log_metrics = record
    try:
        yield
    finally:
        ProfilingContext._log_metrics = original


def run_trl(
    workload: Workload,
    prompts: PromptSet,
    total_steps: int,
    warmup: int,
    device: str,
    paired: PairedFloor | None = None,
    variant: str = "trl",
    vllm_server: str | None = None,
) -> Run:
    """One run of TRL's GRPOTrainer; each optimizer step is followed by a paired floor step."""
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOTrainer

    extra = variant_settings(variant, vllm_server)
    seen_prompts: list[str] = []
    lengths: list[list[int]] = []

    def length_reward(prompts, completions, completion_ids, **kwargs) -> list[float]:
        """A trivial reward (characters / 100) that also records what the step ran on, for the shape check."""
        seen_prompts.extend(prompts)
        lengths.append([len(ids) for ids in completion_ids])
        return [len(text) / 100 for text in completions]

    if paired is not None:
        paired.begin()
    watch, phases, active = Stopwatch(device), defaultdict(float), [False]

    class Timer(TrainerCallback):
        """Times TRL's optimizer steps, each followed by its paired floor step."""

        def on_step_begin(self, args, state, control, **kwargs) -> None:
            active[0] = state.global_step >= warmup
            watch.start()

        def on_step_end(self, args, state, control, **kwargs) -> None:
            watch.stop()
            active[0] = False
            if paired is not None:
                paired.step()

    peft_config = None
    if workload.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(**LORA, target_modules=TEXT_PROJECTIONS, task_type="CAUSAL_LM")
    tokenizer = AutoTokenizer.from_pretrained(workload.model, padding_side="left")
    compact = variant in ("trl-compact", "trl-compile")
    with tempfile.TemporaryDirectory() as tmp, compact_lm_head(compact), trl_phases(phases, active):
        trainer = GRPOTrainer(
            model=workload.model,
            reward_funcs=length_reward,
            args=grpo_config(workload, total_steps, device, tmp, extra),
            processing_class=tokenizer,
            train_dataset=Dataset.from_dict({"prompt": prompts.prompts}),
            callbacks=[Timer()],
            peft_config=peft_config,
        )
        trainer.remove_callback(PrinterCallback)  # its end-of-training dict would interleave with our tables
        trainer.train()
    shapes = trl_shapes(tokenizer, seen_prompts, lengths, workload)
    floor = paired.watch if paired else Stopwatch(device)
    return Run(watch, floor, shapes, paired.shapes if paired else [], phases=dict(phases))


def trl_shapes(tokenizer, prompts: list[str], lengths: list[list[int]], workload: Workload) -> list[StepShape]:
    """Per step: prompts x longest prompt, completions x completion length (-1 when they differ)."""
    shapes, per_step = [], workload.completions
    for step, step_lengths in enumerate(lengths):
        step_prompts = prompts[step * per_step : (step + 1) * per_step : workload.group_size]
        prompt_len = max(len(tokenizer(p)["input_ids"]) for p in step_prompts)
        length = step_lengths[0] if len(set(step_lengths)) == 1 else -1
        shapes.append(StepShape(len(step_prompts), prompt_len, len(step_lengths), length))
    return shapes
