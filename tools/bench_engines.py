"""Rollout engines compared: our GRPO step with `rollout.engine=hf` and with `rollout.engine=vllm`, phase by phase.

Both run the embedded tiny Qwen2-Audio through the real Lightning loop (composed from `configs/` like
`audio-thinker train`) with the same prompts per step, G, forced completion length (min = max new tokens),
beta and step count. Each step is split into weight sync (vllm: save + reload + cache resets), generation, and
the rest (rewards, log-prob passes, backward, optimizer). The vLLM server is started once, before the measured
steps; its start time is reported apart. The engines take turns `--rounds` times; medians over all measured steps.

    python tools/bench_engines.py   # minutes on a 2-core CPU; needs `audio-thinker rollout-server --setup`

The last line is machine readable: `step_speedup=<hf/vllm> generation_speedup=<x> sync_s=<s>`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
from hydra.utils import instantiate

from audio_thinker.cli import compose_run
from audio_thinker.models.sources import resolve_path
from audio_thinker.rollout.server import ServerProcess, ServerSettings
from audio_thinker.train import build_module, build_trainer

PHASES = ("sync", "generation", "rest", "step")


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


def run(engine: str, args, url: str | None) -> list[dict[str, float]]:
    """Measured steps of one run with `engine` (warm-up steps dropped)."""
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
        f"rollout.engine={engine}",
        *([f"rollout.server.url={url}"] if url else []),
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
    args = parser.parse_args(argv)
    logs = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    settings = ServerSettings(enforce_eager=not args.compile)
    server = ServerProcess(Path(resolve_path("tiny-qwen2-audio")), settings, logs / "server.log", "float32")
    start = time.perf_counter()
    try:
        server.wait_healthy(900)
        startup = time.perf_counter() - start
        rows: dict[str, list[dict[str, float]]] = {"hf": [], "vllm": []}
        for _ in range(args.rounds):
            for engine in rows:
                rows[engine] += run(engine, args, server.url if engine == "vllm" else None)
    finally:
        server.stop()
    print(
        f"\n{args.batch_size} prompts x {args.group_size} samples x {args.new_tokens} tokens, beta {args.beta}; "
        f"median seconds over {args.steps * args.rounds} steps; vLLM server start {startup:.0f} s"
    )
    print(f"{'engine':8}" + "".join(f"{phase:>12}" for phase in PHASES))
    medians = {e: {p: statistics.median(r[p] for r in rows[e]) for p in PHASES} for e in rows}
    for engine, values in medians.items():
        print(f"{engine:8}" + "".join(f"{values[p]:12.2f}" for p in PHASES))
    hf, vllm = medians["hf"], medians["vllm"]
    print(
        f"step_speedup={hf['step'] / vllm['step']:.2f} "
        f"generation_speedup={hf['generation'] / vllm['generation']:.2f} sync_s={vllm['sync']:.3f}"
    )


if __name__ == "__main__":
    main()
