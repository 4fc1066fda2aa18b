"""The command line of `tools/bench_step.py`: presets, rounds of every contender, the report and its files."""

from __future__ import annotations

import argparse
import json
import logging
import os
import warnings
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import torch
from transformers import AutoProcessor, AutoTokenizer

from audio_thinker.embedded.architecture import TINY_AUDIO_SECONDS

from . import models, report
from .absolute import VARIANTS, absolute_run
from .environment import ROOT, machine, pin, release_memory, versions
from .floors import load_floor
from .ours import PhaseProfile, run_ours
from .pairing import PairedFloor, Run, run_naive_floor
from .stats import median
from .trl_runner import run_trl
from .workload import PromptSet, Workload, check_shapes, fixed_length_prompts

RESULTS = ROOT / "tools" / "bench" / "results"
PAPER_PROMPT_TOKENS = 800  # ~750 audio tokens of a 30 s clip + the question, options and instruction


def bf16_supported(device: str) -> bool:
    """bf16 where the device computes in it natively (CUDA with bf16, or a CPU with AVX512-BF16/AMX)."""
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def text_workload(ns: argparse.Namespace) -> Workload:
    """The `--preset` workload with the command line's sizes."""
    if ns.preset == "paper":
        dtype = "bfloat16" if bf16_supported(ns.device) else "float32"
        base = Workload(
            str(models.paper_lm(ns.layers, device=ns.device)),  # built on the device: seconds on a GPU
            batch_size=1,
            group_size=8,
            new_tokens=256,
            prompt_tokens=PAPER_PROMPT_TOKENS,
            lr=1e-6,
            dtype=dtype,
            quant="lora",
            checkpointing=True,
        )
    else:
        base = Workload(str(models.tiny(audio=False)))
    return sized(base, ns)


def audio_workload(ns: argparse.Namespace) -> Workload | None:
    """The `--audio` comparison's workload: the tiny Qwen2-Audio, or the Whisper-large encoder at 30 s."""
    if ns.audio == "none":
        return None
    if ns.audio == "whisper-large":
        model, seconds = models.whisper_large_audio(ns.audio_layers, device=ns.device), models.WHISPER_SECONDS
    else:
        model, seconds = models.tiny(audio=True), TINY_AUDIO_SECONDS
    return sized(Workload(str(model), audio=True, audio_seconds=seconds), ns)


def sized(workload: Workload, ns: argparse.Namespace) -> Workload:
    """`workload` with the sizes given on the command line."""
    sizes = {
        "batch_size": ns.batch_size,
        "group_size": ns.group_size,
        "new_tokens": ns.new_tokens,
        "prompt_tokens": ns.prompt_tokens,
    }
    return replace(workload, **{k: v for k, v in sizes.items() if v is not None})


def contenders(ns: argparse.Namespace, workload: Workload, prompts: PromptSet, paired: PairedFloor, total: int):
    """name -> a function running one round of that contender (each step paired with a tight-floor step)."""
    runs = {}
    if not ns.skip_naive:
        runs[report.NAIVE] = lambda: run_naive_floor(paired, total)
    runs[report.OURS] = lambda: run_ours(workload, prompts, total, ns.device, paired)
    if ns.vllm_server:
        runs[report.OURS_VLLM] = lambda: run_ours(workload, prompts, total, ns.device, paired, engine="vllm")
    for variant in ns.trl:
        runs[report.TRL_NAMES[variant]] = lambda v=variant: run_trl(
            workload, prompts, total, ns.warmup, ns.device, paired, v, ns.vllm_server
        )
    return runs


def audio_contenders(ns: argparse.Namespace, workload: Workload, prompts: PromptSet, paired: PairedFloor, total):
    """Ours with audio encoded once per example, and re-encoded for every sample in every pass."""
    return {
        report.ONCE: lambda: run_ours(workload, prompts, total, ns.device, paired),
        report.REENCODED: lambda: run_ours(workload, prompts, total, ns.device, paired, naive_audio=True),
    }


def measure(ns, workload: Workload, make_contenders) -> tuple[dict, dict]:
    """Every contender `rounds` times, in an order rotated each round; each step paired with a tight step."""
    processor = (AutoProcessor if workload.audio else AutoTokenizer).from_pretrained(workload.model)
    total = ns.warmup + ns.steps
    prompts = fixed_length_prompts(processor, workload, workload.batch_size * total)
    workload = replace(workload, prompt_tokens=prompts.text_tokens)
    audios = [ex.audio for ex in prompts.examples] if workload.audio else None
    paired = PairedFloor(load_floor(workload, prompts.prompts, audios, ns.device), ns.device)
    results = run_rounds(make_contenders(ns, workload, prompts, paired, total), ns.rounds, ns.device)
    entries = {name: summarise(name, runs_of, workload, ns.warmup) for name, runs_of in results.items()}
    return entries, workload.as_dict()


def run_rounds(runs: dict, rounds: int, device: str) -> dict[str, list[Run]]:
    """Every contender `rounds` times, in an order rotated each round; each run's models freed before the next."""
    results: dict[str, list[Run]] = {name: [] for name in runs}
    for index in range(rounds):
        names = list(runs)
        for name in names[index % len(names) :] + names[: index % len(names)]:
            results[name].append(runs[name]())
            release_memory(device)
            logging.getLogger("bench").info("round %d/%d: %s done", index + 1, rounds, name)
    return results


def summarise(name: str, runs: list[Run], workload: Workload, warmup: int) -> dict:
    """Check every measured step's shapes against its paired floor step and the workload; the JSON entry."""
    shapes = [s for run in runs for s in run.shapes[warmup:]]
    floor_shapes = [s for run in runs for s in run.floor_shapes[warmup:]]
    expected = floor_shapes[0]  # the floor's prompts are the ground truth of the prompt length (audio included)
    wanted = (workload.batch_size, workload.completions, workload.new_tokens)
    if (expected.prompts, expected.completions, expected.completion_len) != wanted:
        raise AssertionError(
            f"the floor ran on {expected}; the workload asks for (prompts, completions, length) {wanted}"
        )
    check_shapes(name, shapes, expected)
    check_shapes(f"tight floor paired with {name}", floor_shapes, expected)
    entry = report.contender_entry([run.pairs(warmup) for run in runs], shapes)
    if any(run.encoder_clips for run in runs):
        entry["encoder_clips_per_step"] = median([c for run in runs for c in run.encoder_clips[warmup:]])
        entry["encoder_calls_per_step"] = median([c for run in runs for c in run.encoder_calls[warmup:]])
        entry["examples_per_step"] = float(workload.batch_size)
    if any(run.phases for run in runs):
        steps = sum(len(run.watch.wall) - warmup for run in runs)
        names = dict.fromkeys(k for run in runs for k in run.phases)
        entry["phases_ms"] = {k: 1000 * sum(run.phases.get(k, 0.0) for run in runs) / steps for k in names}
    return entry


def run(ns: argparse.Namespace) -> dict:
    """Measure everything the command line asks for; the results document."""
    doc = {
        "name": ns.name,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(ns.device),
        "versions": versions(),
        "timing": {"rounds": ns.rounds, "steps": ns.steps, "warmup": ns.warmup},
    }
    doc["contenders"], doc["workload"] = {}, None
    if not ns.skip_text:
        doc["contenders"], doc["workload"] = measure(ns, text_workload(ns), contenders)
    doc["phases"] = {name: e.pop("phases_ms") for name, e in doc["contenders"].items() if "phases_ms" in e}
    audio = audio_workload(ns)
    if audio is not None:
        entries, workload = measure(ns, audio, audio_contenders)
        doc["audio"] = {"contenders": entries, "workload": workload, "timing": doc["timing"]}
    if ns.profile and not ns.skip_text:
        doc["phases"][f"{report.OURS} (--profile)"] = profile(ns, text_workload(ns))
    if ns.device.startswith("cuda") and ns.preset == "paper" and not ns.skip_absolute:
        workload, doc["absolute"] = full_7b_workload(ns), []
        for name in ns.absolute_variants.split(","):
            doc["absolute"].append(
                absolute_run(workload, ns.steps, ns.warmup, ns.device, VARIANTS[name], ns.memory_cap_gib)
            )
            save(ns, doc)  # a later variant that runs out of time must not take this one's figures with it
    doc["machine"]["load_end"] = os.getloadavg()[0]
    return doc


def save(ns: argparse.Namespace, doc: dict) -> None:
    """Write the results document (also while a run is still going: what is measured is kept)."""
    ns.json.parent.mkdir(parents=True, exist_ok=True)
    ns.json.write_text(json.dumps(doc, indent=1))


def full_7b_workload(ns: argparse.Namespace) -> Workload:
    """The whole 7B Qwen2-Audio shape, QLoRA NF4 + checkpointing, G=8, 256 forced tokens, one 30 s clip per prompt."""
    model = models.qwen2_audio_7b(device=ns.device)
    return Workload(
        str(model),
        batch_size=1,
        group_size=8,
        new_tokens=256,
        lr=1e-6,
        dtype="bfloat16",
        quant="qlora_nf4",
        checkpointing=True,
        audio=True,
        audio_seconds=models.WHISPER_SECONDS,
    )


def profile(ns: argparse.Namespace, workload: Workload) -> dict[str, float]:
    """Our step split into phases (one extra run, not paired, not part of the ratios)."""
    processor = AutoTokenizer.from_pretrained(workload.model)
    total = ns.warmup + ns.steps * ns.rounds
    prompts = fixed_length_prompts(processor, workload, workload.batch_size * total)
    phases = PhaseProfile(ns.warmup, ns.device)
    run_ours(workload, prompts, total, ns.device, callbacks=(phases,))
    return phases.milliseconds()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description="GRPO step time: ours vs TRL vs plain-torch floors (see tools/bench/).")
    p.add_argument("--preset", choices=["tiny", "paper"], default="tiny", help="tiny text Qwen2, or the paper shape")
    p.add_argument("--layers", type=int, default=2, help="paper preset: decoder layers of the 7B shape kept")
    p.add_argument(
        "--audio",
        choices=["tiny", "whisper-large", "none"],
        default="tiny",
        help="the encoder comparison: tiny Qwen2-Audio, the Whisper-large encoder at 30 s, or none",
    )
    p.add_argument("--audio-layers", type=int, default=32, help="whisper-large: encoder layers kept (real: 32)")
    p.add_argument("--rounds", type=int, default=10, help="runs of every contender (the bootstrap unit)")
    p.add_argument("--steps", type=int, default=2, help="measured steps per run")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured steps first, every run")
    p.add_argument("--batch-size", type=int, help="prompts per step (preset default)")
    p.add_argument("--group-size", type=int, help="completions per prompt, G (preset default)")
    p.add_argument("--new-tokens", type=int, help="exact completion length (preset default)")
    p.add_argument("--prompt-tokens", type=int, help="every prompt's text tokens (preset default)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (0: torch's default)")
    p.add_argument(
        "--cpu",
        type=int,
        default=(os.cpu_count() or 1) - 1,
        help="pin the process to this core, as `taskset -c N` would (-1: no pinning)",
    )
    p.add_argument(
        "--trl",
        type=lambda s: [v for v in s.split(",") if v],
        default=None,
        help="TRL variants, comma separated: trl, trl-compact, trl-compile (default: trl,trl-compact on "
        "a CPU, trl on CUDA); empty to skip TRL",
    )
    p.add_argument("--vllm-server", help="URL of a vLLM server: adds TRL use_vllm=True and our vllm engine")
    p.add_argument("--skip-text", action="store_true", help="only the audio comparison (and the absolute run)")
    p.add_argument("--skip-naive", action="store_true", help="do not run the naive floor")
    p.add_argument("--skip-absolute", action="store_true", help="paper preset on CUDA: no absolute 7B QLoRA run")
    p.add_argument(
        "--absolute-variants",
        default="hf",
        help=f"absolute run: how rollouts are sampled, comma-separated ({', '.join(VARIANTS)})",
    )
    p.add_argument("--memory-cap-gib", type=float, help="absolute run on CUDA: cap the process's allocations")
    p.add_argument("--profile", action="store_true", help="also split our step into timed phases")
    p.add_argument("--name", help="the run's name in the performance table (default: the preset)")
    p.add_argument("--json", type=Path, help="where to write the results (default tools/bench/results/NAME.json)")
    p.add_argument(
        "--readme",
        action="store_true",
        help="only regenerate the tables of docs/performance.md from tools/bench/results/*.json",
    )
    ns = p.parse_args(argv)
    if ns.trl is None:
        ns.trl = ["trl"] if ns.device.startswith("cuda") else ["trl", "trl-compact"]
    if ns.vllm_server and "trl-vllm" not in ns.trl:
        ns.trl.append("trl-vllm")
    unknown = set(ns.absolute_variants.split(",")) - VARIANTS.keys()
    if unknown:
        p.error(f"--absolute-variants: unknown {', '.join(sorted(unknown))}; choose from {', '.join(VARIANTS)}")
    ns.name = ns.name or ns.preset + ("" if ns.audio in ("tiny", "none") else f"+{ns.audio}")
    ns.json = ns.json or RESULTS / f"{ns.name}.json"
    return ns


def update_readme(results: Path = RESULTS, readme: Path = ROOT / "docs" / "performance.md") -> None:
    """Rewrite the performance tables of docs/performance.md from every saved results file."""
    docs = [json.loads(path.read_text()) for path in sorted(results.glob("*.json"))]
    readme.write_text(report.replace_readme_block(readme.read_text(), report.readme_block(docs)))


def main(argv: list[str] | None = None) -> None:
    """Run, print the report (its last line machine readable), save the JSON."""
    ns = parse_args(argv)
    if ns.readme:
        update_readme()
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Deprecation notices of renamed transformers arguments (TRL's and ours) and Lightning's note that our
    # datamodule has no validation set would interleave with the report.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*val_dataloader.*")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):  # Lightning sets its own INFO level
        logging.getLogger(name).setLevel(logging.WARNING)
    pin(ns.threads, ns.cpu, ns.device)
    doc = run(ns)
    save(ns, doc)
    print(f"results: {ns.json}\n")
    print(report.markdown(doc))
