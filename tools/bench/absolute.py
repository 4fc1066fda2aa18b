"""Absolute figures of our step for one configuration: step time, tokens per second and peak memory.

The GPU run: the whole 7B Qwen2-Audio shape (random weights) with QLoRA NF4, G=8, 256 forced tokens and 30 s of
audio per prompt; the project target is a peak of at most 24 GiB. On a CPU the same code runs any workload
(peak memory is then the process's peak resident set, model load included). Each `Variant` is one way of sampling
the rollouts (issue 25's goals per step on one GPU: `merged` <= 12 s within 24 GiB, `vllm` <= 8 s).
"""

from __future__ import annotations

import logging
import resource
import time
from typing import NamedTuple

import torch
from transformers import AutoProcessor

from .environment import release_memory
from .ours import run_ours
from .stats import bootstrap_median
from .workload import Workload, check_shapes, fixed_length_prompts

GIB = 2**30
TARGET_PEAK_GIB = 24.0


class Variant(NamedTuple):
    """How the rollouts of the absolute run are sampled: an engine and its config overrides; the goal in s/step."""

    label: str
    engine: str = "hf"
    overrides: tuple[str, ...] = ()
    goal_step_s: float | None = None


VARIANTS = {
    "hf": Variant("hf engine, the policy's own (4-bit + LoRA) weights"),
    "merged": Variant("hf engine, merged bf16 generation weights", "hf", ("rollout.generation_weights=merged",), 12.0),
    # Memory figures are the trainer's (its cap included); the server takes its own 0.35 of the card beside it.
    "vllm": Variant(
        "vllm sidecar (in-memory weight sync; memory: the trainer's)",
        "vllm",
        ("rollout.server.gpu_memory_utilization=0.35",),
        8.0,
    ),
}


def cap_memory(device: str, cap_gib: float | None) -> None:
    """Limit this process's CUDA allocations to `cap_gib` (a smaller card's budget); nothing on a CPU."""
    if cap_gib and device.startswith("cuda"):
        total = torch.cuda.get_device_properties(device).total_memory / GIB
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap_gib / total))


def peak_memory_gib(device: str) -> float:
    """Peak memory since the last reset: CUDA allocations on a GPU, else this process's peak RSS."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / GIB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # Linux reports KiB


def absolute_run(
    workload: Workload,
    steps: int,
    warmup: int,
    device: str,
    variant: Variant = VARIANTS["hf"],
    memory_cap_gib: float | None = None,
) -> dict:
    """Run our step `warmup + steps` times sampling as `variant` says; the median measured step, tokens/s and peak
    memory (allocations capped at `memory_cap_gib` on a GPU when given)."""
    processor = AutoProcessor.from_pretrained(workload.model)
    prompts = fixed_length_prompts(processor, workload, workload.batch_size * (warmup + steps))
    release_memory(device)  # models of earlier runs in this process must not count towards this run's peak
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    cap_memory(device, memory_cap_gib)
    start = time.perf_counter()
    run = run_ours(workload, prompts, warmup + steps, device, engine=variant.engine, overrides=variant.overrides)
    logging.getLogger("bench").info(
        "absolute: load + %d steps in %.0f s; steps took %s s",
        warmup + steps,
        time.perf_counter() - start,
        ", ".join(f"{t:.2f}" for t in run.watch.wall),
    )
    shapes = run.shapes[warmup:]
    check_shapes("ours (absolute)", shapes, shapes[0]._replace(completion_len=workload.new_tokens))
    step = bootstrap_median(run.watch.wall[warmup:])
    completion_tokens = workload.completions * workload.new_tokens
    return {
        "variant": variant.label,
        "goal_step_s": variant.goal_step_s,
        "memory_cap_gib": memory_cap_gib,
        "workload": workload.as_dict(),
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        "prompt_len": shapes[0].prompt_len,
        "step_s": step.as_dict(),
        "completion_tokens_per_s": completion_tokens / step.median,
        "tokens_per_s": workload.completions * (shapes[0].prompt_len + workload.new_tokens) / step.median,
        "peak_memory_gib": peak_memory_gib(device),
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / GIB if device.startswith("cuda") else None,
        "target_peak_gib": TARGET_PEAK_GIB,
    }
