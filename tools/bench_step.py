"""Step-time benchmark: our GRPO step vs TRL's GRPOTrainer vs a framework-free floor, plus audio encode-once.

Everything runs in this process on the same tiny text-only Qwen2 with the same prompts per step, G, forced
completion length (min = max new tokens: no completion stops early), beta, AdamW settings and step count.
Every contender step is followed by one floor step (plain transformers + torch on its own copy of the model),
so each measurement has a partner taken moments later under the same machine load; ratios are medians of the
per-pair ratios, which keeps them meaningful on a shared, noisy CPU. The first `--warmup` steps of every run
are dropped, and the contenders take turns `--rounds` times. Then the tiny Qwen2-Audio runs our step twice:
audio encoded once per example (the library), and a naive loop that re-encodes every sample's audio in every
pass (generation, policy, reference), counting the clips that go through the audio tower.

    python tools/bench_step.py                       # about 1-3 minutes on a 2-core CPU
    python tools/bench_step.py --skip-trl --steps 2  # without trl (it comes with: pip install -e ".[bench]")

The last line is machine readable:
`ratio_vs_trl=<x> overhead_pct=<y> encoder_calls_per_step=<n> examples_per_step=<m>`.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from transformers import AutoModelForCausalLM, AutoTokenizer

from audio_thinker.cli import config_dir
from audio_thinker.losses.config import build_loss
from audio_thinker.models.policy import PromptEncoding, Qwen2AudioPolicy
from audio_thinker.models.tiny import ensure_tiny_qwen2
from audio_thinker.module import GRPOModule
from audio_thinker.rollout.sampler import render_prompts
from audio_thinker.train import build_module, build_trainer

ADAM_BETAS = (0.9, 0.99)  # configs/optimizer/adamw.yaml; TRL and the floor are given the same
MAX_GRAD_NORM = 1.0  # configs/trainer/default.yaml gradient_clip_val
OURS, TRL, FLOOR = "audio-thinker (ours)", "TRL GRPOTrainer", "floor: generate + fwd/bwd + AdamW, no framework"
ONCE, NAIVE = "ours, audio encoded once", "naive: audio re-encoded per sample and pass"


@dataclass
class BenchArgs:
    """One benchmark configuration, shared by every contender."""

    steps: int = 4  # measured optimizer steps per contender and round
    warmup: int = 2  # steps run first in every run and not measured (allocator, lazy init, first-call caches)
    rounds: int = 3  # the contenders take turns this many times
    batch_size: int = 2  # prompts per step
    group_size: int = 8  # G completions per prompt: 8, as both papers and our experiment presets train
    new_tokens: int = 64  # every completion is exactly this long
    beta: float = 0.04  # KL coefficient: a reference forward pass every step
    lr: float = 1e-5
    seed: int = 0
    device: str = "cpu"
    threads: int = 1  # CPU intra-op threads; 0 leaves torch's default

    @property
    def total_steps(self) -> int:
        """Warm-up plus measured steps of one run."""
        return self.warmup + self.steps


@dataclass
class StepStats:
    """Per-step measurements of one contender, warm-up steps dropped."""

    name: str
    seconds: list[float] = field(default_factory=list)  # wall clock per step
    cpu_seconds: list[float] = field(default_factory=list)  # this process's CPU time per step
    floor_seconds: list[float] = field(default_factory=list)  # the paired floor step right after each step
    completion_lengths: set[int] = field(default_factory=set)  # distinct completion lengths seen
    encoder_clips: list[int] = field(default_factory=list)  # audio clips through an audio tower, per step
    encoder_calls: list[int] = field(default_factory=list)  # audio tower forward calls (batched), per step
    examples: list[int] = field(default_factory=list)  # prompts per step

    @property
    def median(self) -> float:
        """Median wall-clock step time."""
        return median(self.seconds)

    @property
    def relative(self) -> float:
        """Median over steps of (this step / its paired floor step): the step in units of the floor."""
        return median([s / f for s, f in zip(self.seconds, self.floor_seconds, strict=True)])

    def extend(self, other: StepStats) -> StepStats:
        """Add another round's measurements."""
        for name in ("seconds", "cpu_seconds", "floor_seconds", "encoder_clips", "encoder_calls", "examples"):
            getattr(self, name).extend(getattr(other, name))
        self.completion_lengths |= other.completion_lengths
        return self


def median(values: list[float]) -> float:
    """statistics.median, NaN for no values."""
    return statistics.median(values) if values else math.nan


class Stopwatch:
    """Wall-clock and process CPU time of spans; waits for queued GPU work so a timestamp means it is done."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self._start = (0.0, 0.0)

    def _now(self) -> tuple[float, float]:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter(), time.process_time()

    def start(self) -> None:
        """Open a span."""
        self._start = self._now()

    def stop(self) -> None:
        """Close the span and record it."""
        wall, cpu = self._now()
        self.wall.append(wall - self._start[0])
        self.cpu.append(cpu - self._start[1])


# -- the floor ------------------------------------------------------------------------------------------
def floor_step(model, reference, optimizer, batch: dict, args: BenchArgs, eos: list[int], pad: int) -> int:
    """One GRPO step with no framework: generate, policy and reference forwards, loss, backward, AdamW step."""
    prompt_len = batch["input_ids"].shape[1]
    model.eval()
    with torch.no_grad():
        ids = model.generate(**batch, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                             max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                             num_return_sequences=args.group_size, eos_token_id=eos, pad_token_id=pad)  # fmt: skip
    model.train()
    completion = ids[:, prompt_len:]  # [B*G, C]
    mask = torch.cat([batch["attention_mask"].repeat_interleave(args.group_size, 0), torch.ones_like(completion)], 1)
    positions = (mask.cumsum(1) - 1).clamp(min=0)

    def logps(m) -> torch.Tensor:
        """Per-token log-probs of the completions under model `m`."""
        # The LM head runs on the completion positions only, as ours and TRL's do.
        out = m(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=completion.shape[1] + 1)
        logits = out.logits[:, :-1]  # [B*G, C, V]: position p predicts token p+1
        return torch.log_softmax(logits.float(), -1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)  # [B*G, C]

    policy = logps(model)
    with torch.no_grad():
        ref = logps(reference)
    advantages = torch.randn(ids.shape[0], 1, device=ids.device)  # rewards do not change the cost of a step
    delta = ref - policy
    loss = (-torch.exp(policy - policy.detach()) * advantages + args.beta * (delta.exp() - delta - 1)).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return completion.shape[1]


class Floor:
    """The floor on its own copy of the tiny Qwen2 (policy + frozen reference + AdamW), one step at a time."""

    def __init__(self, args: BenchArgs, prompts: list[str]) -> None:
        path = ensure_tiny_qwen2()
        self.args = args
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
        self.model.to(args.device)
        self.reference = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=args.lr, betas=ADAM_BETAS, weight_decay=0.0)
        self.eos, tokenizer = self.model.generation_config.eos_token_id, AutoTokenizer.from_pretrained(path)
        self.pad = tokenizer.pad_token_id
        tokenizer.padding_side = "left"
        b = args.batch_size
        chunks = [prompts[i : i + b] for i in range(0, len(prompts) - b + 1, b)]
        # Tokenised up front: the floor is the model work alone.
        self.batches = [
            dict(tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(args.device))
            for chunk in chunks
        ]
        self.watch, self.lengths, self.done = Stopwatch(args.device), set(), 0
        for _ in range(args.warmup):
            self.step()

    def step(self) -> None:
        """Run and time one floor step on the next batch of prompts."""
        batch = self.batches[self.done % len(self.batches)]
        self.watch.start()
        self.lengths.add(floor_step(self.model, self.reference, self.optimizer, batch, self.args, self.eos, self.pad))
        self.watch.stop()
        self.done += 1

    def mark(self) -> int:
        """A position in the floor's measurements, to collect the steps paired with one run."""
        return len(self.watch.wall)

    def since(self, mark: int) -> list[float]:
        """Wall-clock times of the floor steps taken after `mark`."""
        return self.watch.wall[mark:]


# -- our framework ----------------------------------------------------------------------------------------
def compose_config(output_dir: Path, overrides: list[str]) -> DictConfig:
    """The real `configs/train.yaml` with `overrides`, writing under `output_dir` (as the test suite does)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


def our_overrides(args: BenchArgs, model: str) -> list[str]:
    """The shared configuration; loggers, checkpoints and sample logging off (TRL gets the same)."""
    return [
        f"model={model}",
        f"seed={args.seed}",
        f"data.batch_size={args.batch_size}",
        f"data.train.size={max(args.batch_size * args.total_steps, 8)}",
        f"rollout.group_size={args.group_size}",
        f"rollout.max_new_tokens={args.new_tokens}",
        f"rollout.min_new_tokens={args.new_tokens}",
        "rollout.log_samples_every_n_steps=0",
        f"loss.beta={args.beta}",
        f"optimizer.lr={args.lr}",
        f"trainer.max_steps={args.total_steps}",
        f"trainer.accelerator={'gpu' if args.device.startswith('cuda') else 'cpu'}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "+trainer.enable_checkpointing=false",
        "~logger",
        "~callbacks",
    ]


def synthetic_prompts(args: BenchArgs, count: int) -> list[str]:
    """Chat-formatted prompts from our synthetic questions, rendered exactly as our text-only rollouts do."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_config(Path(tmp), our_overrides(args, "tiny_qwen2"))
        dataset = instantiate(cfg.data.train, size=count)
        template = instantiate(cfg.rollout.prompt)
    tokenizer = AutoTokenizer.from_pretrained(ensure_tiny_qwen2())
    chat = SimpleNamespace(processor=tokenizer, has_audio=False)  # all that render_prompts reads of a policy
    return render_prompts(chat, [dataset[i] for i in range(count)], template)


class NaiveAudioPolicy(Qwen2AudioPolicy):
    """What a loop without caching does: every pass re-encodes the audio once for each of the G samples."""

    group_size = 1

    def encode_audio(self, encoding: PromptEncoding) -> torch.Tensor:
        """Encode every clip G times over and keep one copy."""
        g = self.group_size
        # Tiled (not interleaved) so the first copy's rows come first, in the original order.
        tiled = replace(encoding, input_features=encoding.input_features.repeat(g, 1, 1),
                        feature_attention_mask=encoding.feature_attention_mask.repeat(g, 1))  # fmt: skip
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
        """Start counting a new step."""
        self.calls = self.clips = 0

    def remove(self) -> None:
        """Detach the hooks."""
        for handle in self.handles:
            handle.remove()


class StepTimer(L.Callback):
    """Times each step from batch start to batch end (rollout, rewards, loss, backward, optimizer step)."""

    def __init__(self, device: str, counter: EncoderCounter | None = None, floor: Floor | None = None) -> None:
        self.watch, self.counter, self.floor = Stopwatch(device), counter, floor
        self.lengths: list[set[int]] = []
        self.clips: list[int] = []
        self.calls: list[int] = []
        self.examples: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.counter is not None:
            self.counter.reset()
        self.watch.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.watch.stop()
        rollout = batch["rollout"]
        self.lengths.append(set(rollout.completion_mask.sum(dim=1).tolist()))
        self.examples.append(len(rollout.examples))
        self.clips.append(self.counter.clips if self.counter else 0)
        self.calls.append(self.counter.calls if self.counter else 0)
        if self.floor is not None:
            self.floor.step()  # outside the timed span: the pair for this step

    def stats(self, name: str, warmup: int, floor_seconds: list[float]) -> StepStats:
        """Measurements after the warm-up steps."""
        return StepStats(
            name, self.watch.wall[warmup:], self.watch.cpu[warmup:], floor_seconds[warmup:],
            set().union(*self.lengths[warmup:]), self.clips[warmup:], self.calls[warmup:], self.examples[warmup:],
        )  # fmt: skip


def run_ours(
    args: BenchArgs, model: str = "tiny_qwen2", naive: bool = False, floor: Floor | None = None, profiler=None
) -> StepStats:
    """Our GRPO step through the real Lightning loop, composed from `configs/` like `audio-thinker train`."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_config(Path(tmp), our_overrides(args, model))
        L.seed_everything(args.seed, workers=True, verbose=False)
        if naive:
            loaded = instantiate(cfg.model)
            policy = NaiveAudioPolicy(loaded.model, loaded.processor)
            policy.group_size = args.group_size
            module = GRPOModule(policy, build_loss(cfg.loss), instantiate(cfg.optimizer))
        else:
            module = build_module(cfg)
        counter = EncoderCounter(module) if module.policy.has_audio else None
        timer = StepTimer(args.device, counter, floor)
        trainer = build_trainer(cfg)
        trainer.callbacks.insert(0, timer)  # first, so the rollout callback's work is inside the timed span
        if profiler is not None:
            trainer.callbacks.insert(0, profiler)
        mark = floor.mark() if floor else 0
        trainer.fit(module, datamodule=instantiate(cfg.data))
        if counter is not None:
            counter.remove()
    name = OURS if model == "tiny_qwen2" else NAIVE if naive else ONCE
    return timer.stats(name, args.warmup, floor.since(mark) if floor else [])


# -- TRL ------------------------------------------------------------------------------------------------
def run_trl(args: BenchArgs, prompts: list[str], floor: Floor | None = None) -> StepStats:
    """TRL's GRPOTrainer on the same model directory and prompts, timed by a TrainerCallback."""
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    lengths: list[int] = []

    def length_reward(completions, completion_ids, **kwargs) -> list[float]:
        """A trivial reward (characters / 100) that also records completion lengths for the check."""
        lengths.extend(len(ids) for ids in completion_ids)
        return [len(text) / 100 for text in completions]

    class Timer(TrainerCallback):
        """Times TRL's optimizer steps, each followed by its paired floor step."""

        def __init__(self) -> None:
            self.watch = Stopwatch(args.device)

        def on_step_begin(self, *unused, **kwargs) -> None:
            self.watch.start()

        def on_step_end(self, *unused, **kwargs) -> None:
            self.watch.stop()
            if floor is not None:
                floor.step()

    path = str(ensure_tiny_qwen2())
    timer = Timer()
    with tempfile.TemporaryDirectory() as tmp:
        config = GRPOConfig(
            output_dir=tmp,
            per_device_train_batch_size=args.batch_size * args.group_size,  # TRL counts completions, not prompts
            num_generations=args.group_size,
            max_completion_length=args.new_tokens,
            generation_kwargs={"min_new_tokens": args.new_tokens},
            temperature=1.0, top_p=1.0, top_k=0,
            beta=args.beta, loss_type="grpo", scale_rewards="group", num_iterations=1,
            learning_rate=args.lr, adam_beta1=ADAM_BETAS[0], adam_beta2=ADAM_BETAS[1], weight_decay=0.0,
            lr_scheduler_type="constant", max_grad_norm=MAX_GRAD_NORM, max_steps=args.total_steps,
            gradient_checkpointing=False, bf16=False, fp16=False, use_cpu=not args.device.startswith("cuda"),
            model_init_kwargs={"dtype": "float32", "attn_implementation": "sdpa"}, disable_dropout=True,
            # Same bookkeeping budget as ours: no logging backend, no checkpoints, no evaluation, no progress bar.
            report_to="none", logging_steps=10**9, save_strategy="no", eval_strategy="no", disable_tqdm=True,
            log_completions=False, seed=args.seed, dataloader_num_workers=0,
        )  # fmt: skip
        tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        trainer = GRPOTrainer(
            model=path, reward_funcs=length_reward, args=config, processing_class=tokenizer,
            train_dataset=Dataset.from_dict({"prompt": prompts}), callbacks=[timer],
        )  # fmt: skip
        trainer.remove_callback(PrinterCallback)  # its end-of-training dict would interleave with our table
        mark = floor.mark() if floor else 0
        trainer.train()
    w, skip = args.warmup, args.warmup * args.batch_size * args.group_size
    pairs = floor.since(mark)[w:] if floor else []
    return StepStats(TRL, timer.watch.wall[w:], timer.watch.cpu[w:], pairs, set(lengths[skip:]))


# -- report -----------------------------------------------------------------------------------------------
def summary(text: dict[str, StepStats], audio: dict[str, StepStats]) -> dict[str, float]:
    """The headline numbers, each from per-pair ratios to the floor (NaN where a contender was skipped)."""
    ours, trl, once = text.get(OURS), text.get(TRL), audio.get(ONCE)
    return {
        "ratio_vs_trl": ours.relative / trl.relative if ours and trl else math.nan,
        "overhead_pct": 100 * (1 - 1 / ours.relative) if ours else math.nan,  # (ours - floor) / ours
        "encoder_calls_per_step": median(once.encoder_clips) if once else math.nan,
        "examples_per_step": median(once.examples) if once else math.nan,
    }


def report(args: BenchArgs, text: dict[str, StepStats], audio: dict[str, StepStats], floor: Floor) -> str:
    """The Markdown tables and the machine-readable last line."""
    head = summary(text, audio)
    pooled = StepStats(FLOOR, floor.watch.wall[args.warmup :], floor.watch.cpu[args.warmup :],
                       completion_lengths=floor.lengths)  # fmt: skip
    lines = [
        f"B={args.batch_size} prompts x G={args.group_size}, {args.new_tokens} new tokens each, beta={args.beta}, "
        f"AdamW lr={args.lr}; {args.rounds} rounds x {args.steps} measured steps (after {args.warmup} warm-up "
        f"steps each run); device={args.device}, {torch.get_num_threads()} torch thread(s), "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
        "",
        "| text-only tiny Qwen2 | median step (s) | fastest (s) | median CPU time (s) | x paired floor step "
        "| completion lengths |",
        "|---|---|---|---|---|---|",
    ]
    for s in [*text.values(), pooled]:
        rel = f"{s.relative:.2f}" if s.floor_seconds else "1"
        lines.append(f"| {s.name} | {s.median:.3f} | {min(s.seconds, default=math.nan):.3f} "
                     f"| {median(s.cpu_seconds):.3f} | {rel} | {sorted(s.completion_lengths)} |")  # fmt: skip
    lines.append(f"\nours / TRL = {head['ratio_vs_trl']:.2f}; our overhead above the floor = "
                 f"{head['overhead_pct']:.1f}% of our step (both from per-pair ratios)")  # fmt: skip
    if audio:
        lines += ["", "| tiny Qwen2-Audio | median step (s) | x paired (text) floor step | audio clips encoded / step "
                  "| tower calls / step | examples / step |", "|---|---|---|---|---|---|"]  # fmt: skip
        for s in audio.values():
            lines.append(f"| {s.name} | {s.median:.3f} | {s.relative:.2f} | {median(s.encoder_clips):g} "
                         f"| {median(s.encoder_calls):g} | {median(s.examples):g} |")  # fmt: skip
        if NAIVE in audio and ONCE in audio:
            lines.append(f"\nnaive / encoded once = {audio[NAIVE].relative / audio[ONCE].relative:.2f}x")
    lines += ["", " ".join(f"{k}={v:.3f}" if k == "ratio_vs_trl" else f"{k}={v:.1f}" if k == "overhead_pct"
                           else f"{k}={v:g}" for k, v in head.items())]  # fmt: skip
    return "\n".join(lines)


class PhaseProfile(L.Callback):
    """Splits our measured steps into phases by timing, on this run's objects only, the methods doing each part."""

    def __init__(self, args: BenchArgs) -> None:
        self.args, self.totals, self.steps, self.active = args, {}, 0, False
        self.watch = Stopwatch(args.device)

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
        self._time(by_type["RewardCallback"], "on_train_batch_start", "reward callback (score, advantages, log)")
        self._time(pl_module, "optimizer_step", "optimizer step hook (loss, backward, AdamW)")
        self._time(pl_module, "policy_logps", "  policy log-probs forward")
        self._time(pl_module, "reference_logps", "  reference log-probs forward")
        self._time(pl_module, "backward", "  backward")
        self._time(pl_module, "log", "Lightning self.log (inside the phases above)")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.active = trainer.global_step >= self.args.warmup
        self.watch.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.watch.stop()
        self.steps += self.active

    def table(self, title: str) -> str:
        """Milliseconds per step and share of the step for each phase."""
        step = 1000 * median(self.watch.wall[self.args.warmup :])
        lines = [f"| {title}: phase | ms / step | % of step |", "|---|---|---|"]
        for phase, total in self.totals.items():
            ms = 1000 * total / max(self.steps, 1)
            lines.append(f"| {phase} | {ms:.1f} | {100 * ms / step:.0f}% |")
        lines.append(f"| whole step (median) | {step:.1f} | 100% |")
        return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> tuple[BenchArgs, argparse.Namespace]:
    """Command-line options."""
    d = BenchArgs()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=d.steps, help="measured steps per contender and round")
    p.add_argument("--warmup", type=int, default=d.warmup, help="unmeasured steps first, every run")
    p.add_argument("--rounds", type=int, default=d.rounds, help="times the contenders take turns")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="prompts per step")
    p.add_argument("--group-size", type=int, default=d.group_size, help="completions per prompt (G)")
    p.add_argument("--new-tokens", type=int, default=d.new_tokens, help="exact completion length")
    p.add_argument("--beta", type=float, default=d.beta)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=d.threads,
                   help="CPU threads (default 1: a tiny model gains nothing from more, and one thread keeps "
                   "timings stable when other processes share the cores); 0 = torch's default")  # fmt: skip
    p.add_argument("--skip-trl", action="store_true", help="do not run TRL (not installed, or ours only)")
    p.add_argument("--skip-audio", action="store_true", help="do not run the audio comparison")
    p.add_argument("--profile", action="store_true", help="also split our step into timed phases")
    ns = p.parse_args(argv)
    fields = ("steps", "warmup", "rounds", "batch_size", "group_size", "new_tokens", "beta", "lr", "device", "threads")
    return BenchArgs(**{name: getattr(ns, name) for name in fields}), ns


def main(argv: list[str] | None = None) -> None:
    """Run every contender `rounds` times in turn and print the report."""
    args, ns = parse_args(argv)
    if args.threads and args.device == "cpu":
        torch.set_num_threads(args.threads)
    prompts = synthetic_prompts(args, args.batch_size * args.total_steps)
    floor = Floor(args, prompts)
    text = {OURS: lambda: run_ours(args, floor=floor)}
    if not ns.skip_trl:
        text[TRL] = lambda: run_trl(args, prompts, floor)
    audio = {} if ns.skip_audio else {ONCE: lambda: run_ours(args, "tiny_qwen2_audio", floor=floor),
                                      NAIVE: lambda: run_ours(args, "tiny_qwen2_audio", True, floor)}  # fmt: skip
    results: dict[str, StepStats] = {}
    for _ in range(args.rounds):
        for name, run in {**text, **audio}.items():
            stats = run()
            results[name] = results[name].extend(stats) if name in results else stats
    if ns.profile:  # printed first: the report's last line stays the machine-readable one
        for model in ["tiny_qwen2"] + ([] if ns.skip_audio else ["tiny_qwen2_audio"]):
            profile = PhaseProfile(args)
            run_ours(replace(args, steps=args.steps * args.rounds), model, profiler=profile)
            print(f"{profile.table(model)}\n")
    print(report(args, {k: results[k] for k in text}, {k: results[k] for k in audio}, floor))


if __name__ == "__main__":
    main()
