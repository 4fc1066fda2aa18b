"""Our GRPO step through the real Lightning loop, composed from `configs/` like `audio-thinker train`."""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from audio_thinker.cli import compose_run
from audio_thinker.data.datamodule import AudioQADataModule
from audio_thinker.losses.config import build_loss
from audio_thinker.models.audio_policy import Qwen2AudioPolicy
from audio_thinker.models.loading import build_policy
from audio_thinker.models.policy import PromptEncoding
from audio_thinker.module import GRPOModule
from audio_thinker.rollout.engine_registry import ENGINES
from audio_thinker.train import build_module, build_trainer

from .pairing import PairedFloor, Run
from .stats import Stopwatch, median
from .workload import ExampleList, PromptSet, StepShape, Workload


def our_overrides(workload: Workload, total_steps: int, device: str, engine: str = "hf") -> list[str]:
    """The workload as config overrides; loggers, checkpoints and sample logging off (TRL gets the same)."""
    w = workload
    return [
        f"model.path={w.model}",
        f"model.dtype={w.dtype}",
        f"quant={w.quant}",
        f"model.gradient_checkpointing={str(w.checkpointing).lower()}",
        f"seed={w.seed}",
        f"data.batch_size={w.batch_size}",
        f"rollout.engine={engine}",
        f"rollout.group_size={w.group_size}",
        f"rollout.max_new_tokens={w.new_tokens}",
        f"rollout.min_new_tokens={w.new_tokens}",
        "rollout.prompt.letter_options=true",  # every contender's prompt (the embedded model's recipe lists words)
        "rollout.log_samples_every_n_steps=0",
        f"loss.beta={w.beta}",
        "loss.kl_estimator=k3",
        "loss.kl_bias_correction=true",  # TRL's default (use_bias_correction_kl=True)
        *optimizer_overrides(w),
        f"trainer.max_steps={total_steps}",
        f"trainer.accelerator={'gpu' if device.startswith('cuda') else 'cpu'}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "+trainer.enable_checkpointing=false",
        "~logger",
        "~callbacks",
    ]


def optimizer_overrides(workload: Workload) -> list[str]:
    """Fused AdamW (TRL's default, adamw_torch_fused), or paged 8-bit AdamW with QLoRA as configs/quant says."""
    if workload.quant == "qlora_nf4":
        return ["optimizer=paged_adamw_8bit", f"optimizer.lr={workload.lr}"]
    return [f"optimizer.lr={workload.lr}", "+optimizer.fused=true"]


class NaiveAudioPolicy(Qwen2AudioPolicy):
    """What an R1-AQA-style loop does: every pass re-encodes the audio once for each of the G samples."""

    group_size = 1

    def encode_audio(self, encoding: PromptEncoding) -> torch.Tensor:
        """Encode every clip G times over and keep one copy."""
        g = self.group_size
        # Tiled (not interleaved) so the first copy's rows come first, in the original order.
        tiled = replace(
            encoding,
            input_features=encoding.input_features.repeat(g, 1, 1),
            feature_attention_mask=encoding.feature_attention_mask.repeat(g, 1),
        )
        audio = super().encode_audio(tiled)  # [G*A, H]
        return audio[: audio.shape[0] // g]  # the work is done G times; the result is the same

    def completion_logps(self, *args, **kwargs) -> torch.Tensor:
        """Log-probs that always re-encode the audio."""
        return super().completion_logps(*args, **{**kwargs, "reencode_audio": True})


class EncoderCounter:
    """Counts forward calls of every `audio_tower` under a module, and the clips (batch rows) they encode."""

    def __init__(self, root: torch.nn.Module) -> None:
        self.calls = self.clips = 0
        towers = [m for name, m in root.named_modules() if name.endswith("audio_tower")]
        self.handles = [tower.register_forward_hook(self._hook) for tower in towers]

    def _hook(self, module, inputs, output) -> None:
        self.calls += 1
        self.clips += int(inputs[0].shape[0])  # input_features [clips, mel, frames]

    def reset(self) -> None:
        self.calls = self.clips = 0

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


class StepTimer(L.Callback):
    """Times each step from batch start to batch end, records its shapes, then runs the paired floor step."""

    def __init__(self, device: str, counter: EncoderCounter | None, paired: PairedFloor | None) -> None:
        self.watch, self.counter, self.paired = Stopwatch(device), counter, paired
        self.shapes: list[StepShape] = []
        self.clips: list[int] = []
        self.calls: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.counter is not None:
            self.counter.reset()
        self.watch.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.watch.stop()
        rollout = pl_module.generation  # the generation the step trained on, as the rollout callback handed it over
        lengths = rollout.completion_mask.sum(dim=1)
        length = int(lengths[0]) if bool((lengths == lengths[0]).all()) else -1  # -1: lengths differ
        self.shapes.append(StepShape(len(rollout.examples), rollout.encoding.input_ids.shape[1], len(lengths), length))
        self.clips.append(self.counter.clips if self.counter else 0)
        self.calls.append(self.counter.calls if self.counter else 0)
        if self.paired is not None:
            self.paired.step()  # outside the timed span: the pair of this step


def build_naive_module(cfg: DictConfig, group_size: int) -> GRPOModule:
    """Our module around `NaiveAudioPolicy` (audio re-encoded for every sample in every pass)."""
    loaded = build_policy(cfg.model, str(cfg.trainer.get("accelerator", "auto")))
    policy = NaiveAudioPolicy(loaded.model, loaded.processor)
    policy.group_size = group_size
    return GRPOModule(policy, build_loss(cfg.loss), instantiate(cfg.optimizer, _convert_="all"))


def run_ours(
    workload: Workload,
    prompts: PromptSet,
    total_steps: int,
    device: str,
    paired: PairedFloor | None = None,
    naive_audio: bool = False,
    engine: str = "hf",
    callbacks: tuple = (),
    overrides: tuple[str, ...] = (),
) -> Run:
    """One run of our step; every step is followed by a paired floor step when `paired` is given; `overrides` are
    more config overrides (e.g. `rollout.generation_weights=merged`)."""
    if engine not in ENGINES:
        raise SystemExit(f"rollout engine {engine!r} is not in this tree (engines: {sorted(ENGINES)})")
    if paired is not None:
        paired.begin()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_run(Path(tmp), [*our_overrides(workload, total_steps, device, engine), *overrides])
        L.seed_everything(workload.seed, workers=True, verbose=False)
        module = build_naive_module(cfg, workload.group_size) if naive_audio else build_module(cfg)
        counter = EncoderCounter(module) if module.policy.has_audio else None
        timer = StepTimer(device, counter, paired)
        trainer = build_trainer(cfg)
        # First, so the rollout callback's work is inside the timed span.
        trainer.callbacks[:0] = [*callbacks, timer]
        data = AudioQADataModule(ExampleList(prompts.examples), batch_size=workload.batch_size, seed=workload.seed)
        trainer.fit(module, datamodule=data)
        if counter is not None:
            counter.remove()
    floor = paired.watch if paired else Stopwatch(device)
    floor_shapes = paired.shapes if paired else []
    return Run(timer.watch, floor, timer.shapes, floor_shapes, timer.clips, timer.calls)


class PhaseProfile(L.Callback):
    """Splits our measured steps into phases by timing, on this run's objects only, the methods doing each part."""

    def __init__(self, warmup: int, device: str) -> None:
        self.warmup, self.totals, self.steps, self.active = warmup, {}, 0, False
        self.watch = Stopwatch(device)

    def _time(self, owner, method: str, phase: str) -> None:
        inner = getattr(owner, method)
        self.totals[phase] = 0.0  # rows print in the order they are registered

        def timed(*a, **k):
            start = time.perf_counter()
            try:
                return inner(*a, **k)
            finally:
                if self.active:
                    self.totals[phase] = self.totals.get(phase, 0.0) + time.perf_counter() - start

        setattr(owner, method, timed)  # an instance attribute: the class and other runs are untouched

    def on_fit_start(self, trainer, pl_module) -> None:
        by_type = {type(c).__name__: c for c in trainer.callbacks}
        self._time(by_type["RolloutCallback"], "on_train_batch_start", "rollout callback")
        self._time(pl_module.policy, "encode_prompts", "  encode prompts (tokenise; audio: features + encoder)")
        self._time(pl_module.policy, "generate", "  generate (G samples per prompt)")
        self._time(by_type["RewardCallback"], "score", "  reward scoring (score, advantages, metrics)")
        self._time(pl_module, "optimizer_step", "optimizer step hook (loss, backward, AdamW)")
        self._time(pl_module, "policy_logps", "  policy log-probs forward")
        self._time(pl_module, "reference_logps", "  reference log-probs forward")
        self._time(pl_module, "backward", "  backward")
        self._time(pl_module, "log", "Lightning self.log (inside the phases above)")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.active = trainer.global_step >= self.warmup
        self.watch.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.watch.stop()
        self.steps += self.active

    def milliseconds(self) -> dict[str, float]:
        """Milliseconds per measured step of each phase, and of the whole step (median)."""
        per_step = {phase: 1000 * total / max(self.steps, 1) for phase, total in self.totals.items()}
        return {**per_step, "whole step (median)": 1000 * median(self.watch.wall[self.warmup :])}
