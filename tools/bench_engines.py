"""Rollout engines compared: our GRPO step with each way of sampling, phase by phase; and weight sync alone.

Every variant runs the embedded tiny Qwen2-Audio through the real Lightning loop (composed from `configs/` like
`audio-thinker train`) with the same prompts per step, G, forced completion length (min = max new tokens),
beta and step count: `hf` (the lean decode loop), `hf lora` and `hf lora merged` (LoRA adapters; decoding on the
policy, or on a merged bf16 copy: `rollout.generation_weights=merged`), `vllm stream` (the sidecar, weights
streamed through shared memory) and `vllm files` (`save_pretrained` + reload per sync). Each step is split into
weight sync, generation, and the rest (rewards, log-prob passes, backward, optimizer). The vLLM server is started
once, before the measured steps; its start time is reported apart. The variants take turns `--rounds` times;
medians over all measured steps.

`--sync-only` times weight sync alone, through a real vLLM server, on a Qwen2-0.5B-shaped model (random weights,
bf16): the `save_pretrained` round trip against the shared-memory stream.

    python tools/bench_engines.py              # minutes on a 2-core CPU; needs `audio-thinker rollout-server --setup`
    python tools/bench_engines.py --sync-only  # a few minutes (0.5B model: 1 GB per sync)

The last line is machine readable: `step_speedup=<hf/vllm stream> generation_speedup=<x> sync_s=<s>`, or with
`--sync-only`: `sync_speedup=<files/stream> files_s=<s> stream_s=<s>`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate

from audio_thinker.cli import compose_run
from audio_thinker.models.sources import resolve_path
from audio_thinker.rollout.server import ServerProcess, ServerSettings
from audio_thinker.rollout.vllm_engine import VLLMClient
from audio_thinker.rollout.weight_sync import FileSync, StreamSync
from audio_thinker.train import build_module, build_trainer

PHASES = ("sync", "generation", "rest", "step")
LORA = ["quant=lora", "optimizer.lr=1e-4"]
# Config overrides of each measured variant (the vllm ones get the running server's url).
VARIANTS = {
    "hf": [],
    "hf lora": LORA,
    "hf lora merged": [*LORA, "rollout.generation_weights=merged"],
    "vllm stream": ["rollout.engine=vllm", "rollout.server.weight_sync=stream"],
    "vllm files": ["rollout.engine=vllm", "rollout.server.weight_sync=files"],
}
# Qwen2-0.5B's shape (494M parameters), for the sync-only comparison.
QWEN2_05B = dict(
    hidden_size=896,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    intermediate_size=4864,
    vocab_size=151936,
    tie_word_embeddings=True,
    max_position_embeddings=4096,
)


class PhaseTimer(L.Callback):
    """Wall time of each step and of its phases; `after_rollout` is a second instance placed after the rollout."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self.started = self.rolled_out = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.started = time.perf_counter()

    def mark_rollout_done(self) -> None:
        self.rolled_out = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        end = time.perf_counter()
        sync = float(trainer.callback_metrics.get("rollout/sync_seconds", 0.0))
        rollout = self.rolled_out - self.started
        self.rows.append(
            {"sync": sync, "generation": rollout - sync, "rest": end - self.rolled_out, "step": end - self.started}
        )


class RolloutDone(L.Callback):
    """Placed right after the rollout callback: marks the end of the rollout in `timer`."""

    def __init__(self, timer: PhaseTimer) -> None:
        self.timer = timer

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.timer.mark_rollout_done()


def run(variant: list[str], args, url: str | None) -> list[dict[str, float]]:
    """Measured steps of one run with the `variant` overrides (warm-up steps dropped)."""
    overrides = [
        f"data.batch_size={args.batch_size}",
        f"data.train.size={args.batch_size * (args.warmup + args.steps)}",
        f"rollout.group_size={args.group_size}",
        f"rollout.max_new_tokens={args.new_tokens}",
        f"rollout.min_new_tokens={args.new_tokens}",
        "rollout.log_samples_every_n_steps=0",
        f"loss.beta={args.beta}",
        f"trainer.max_steps={args.warmup + args.steps}",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "+trainer.enable_checkpointing=false",
        "~logger",
        "~callbacks",
        *variant,
        *([f"rollout.server.url={url}"] if "rollout.engine=vllm" in variant else []),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_run(tmp, overrides)
        L.seed_everything(0, workers=True, verbose=False)
        module, trainer = build_module(cfg), build_trainer(cfg)
        timer = PhaseTimer()
        trainer.callbacks.insert(0, timer)  # before the rollout callback
        trainer.callbacks.insert(2, RolloutDone(timer))  # right after it
        trainer.fit(module, datamodule=instantiate(cfg.data))
    return timer.rows[args.warmup :]


class NoProcessor:
    """The sync benchmark's model has no processor: nothing to save."""

    def save_pretrained(self, path) -> None:
        pass


def sync_only(args) -> None:
    """Seconds per sync of a 0.5B-shaped model through one real server: `save_pretrained` files against the stream."""
    from types import SimpleNamespace

    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**QWEN2_05B)).to(torch.bfloat16).eval()
    policy = SimpleNamespace(hf_model=model, processor=NoProcessor())  # what a sync reads of a policy
    size_gb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e9
    settings = ServerSettings(max_model_len=256, extra_args=["--skip-tokenizer-init"])
    syncs = {"files": FileSync(None, settings.bucket_mib, 600), "stream": StreamSync(None, settings.bucket_mib, 600)}
    logs = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    server = ServerProcess(syncs["files"].start_dir(policy), settings, logs / "server.log", "bfloat16")
    seconds: dict[str, list[float]] = {name: [] for name in syncs}
    try:
        server.wait_healthy(900)
        client = VLLMClient(server.url, settings, server)
        for _ in range(args.rounds + 1):  # the first round warms up
            for name, sync in syncs.items():
                start = time.perf_counter()
                sync.sync(policy, client)
                seconds[name].append(time.perf_counter() - start)
    finally:
        server.stop()
        for sync in syncs.values():
            sync.close()
    medians = {name: statistics.median(values[1:]) for name, values in seconds.items()}
    print(f"\nweight sync of a Qwen2-0.5B-shaped model ({size_gb:.2f} GB bf16), median of {args.rounds} syncs each")
    print(f"{'sync':10}{'seconds':>10}{'GB/s':>8}")
    for name, value in medians.items():
        print(f"{name:10}{value:10.2f}{size_gb / value:8.2f}")
    speedup = medians["files"] / medians["stream"]
    print(f"sync_speedup={speedup:.2f} files_s={medians['files']:.3f} stream_s={medians['stream']:.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=2, help="prompts per step")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--beta", type=float, default=0.04)
    parser.add_argument("--steps", type=int, default=4, help="measured steps per run")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="let vLLM torch.compile the model (no enforce_eager)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"which of {', '.join(VARIANTS)}")
    parser.add_argument("--sync-only", action="store_true", help="weight sync alone, 0.5B-shaped model")
    args = parser.parse_args(argv)
    if args.sync_only:
        return sync_only(args)
    variants = [name.strip() for name in args.variants.split(",")]
    logs = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    settings = ServerSettings(enforce_eager=not args.compile)  # a CPU: eager unless asked
    server = ServerProcess(Path(resolve_path("tiny-qwen2-audio")), settings, logs / "server.log", "float32")
    start = time.perf_counter()
    try:
        server.wait_healthy(900)
        startup = time.perf_counter() - start
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name in rows:
                rows[name] += run(VARIANTS[name], args, server.url)
    finally:
        server.stop()
    print(
        f"\n{args.batch_size} prompts x {args.group_size} samples x {args.new_tokens} tokens, beta {args.beta}; "
        f"median seconds over {args.steps * args.rounds} steps; vLLM server start {startup:.0f} s"
    )
    print(f"{'variant':16}" + "".join(f"{phase:>12}" for phase in PHASES))
    medians = {e: {p: statistics.median(r[p] for r in rows[e]) for p in PHASES} for e in rows}
    for name, values in medians.items():
        print(f"{name:16}" + "".join(f"{values[p]:12.3f}" for p in PHASES))
    if "hf" not in medians or "vllm stream" not in medians:
        return
    hf, vllm = medians["hf"], medians["vllm stream"]
    print(
        f"step_speedup={hf['step'] / vllm['step']:.2f} "
        f"generation_speedup={hf['generation'] / vllm['generation']:.2f} sync_s={vllm['sync']:.3f}"
    )


if __name__ == "__main__":
    main()
