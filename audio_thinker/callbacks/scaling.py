"""A live test-time scaling curve: budget-forced accuracy on a small validation subset every N training steps."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
import torch

from audio_thinker.data.errors import SkippedExample
from audio_thinker.eval.predict import predict
from audio_thinker.eval.scaling_curve import ScalingCurve, curve_from_predictions
from audio_thinker.eval.scaling_plot import plot_curve
from audio_thinker.example import AudioQAExample
from audio_thinker.loggers import log_figure
from audio_thinker.models.decoding import Decoding

if TYPE_CHECKING:  # the module imports the layers below it, never the reverse at run time
    from audio_thinker.module import GRPOModule

log = logging.getLogger(__name__)

PAPER_BUDGETS = (0, 25, 50, 75, 100, 125, 150, 175, 200, 225, 250)


class ScalingCurveCallback(L.Callback):
    """Every `every_n_steps` optimizer steps, measure P(L) at `budgets` on the first `max_examples` validation examples.

    Logs `scaling/accuracy@<L>`, `scaling/think_tokens@<L>` (mean reasoning tokens used), `scaling/slope` (accuracy
    per token) and `scaling/slope_stderr`, `scaling/sweet_spot`, `scaling/sweet_spot_accuracy` as scalars, and the
    plot (n, 95% intervals, chance, reasoning used, the fit's verdict; `eval.scaling_curve`) as the figure
    `scaling/curve` through every active logger (`audio_thinker.loggers.log_figure`). The subset is
    the same every time (the datamodule's `val_set`, in order), so points along training are comparable. It runs
    under `no_grad` with greedy decoding on every rank (logged by rank zero); the policy's train/eval mode and the
    RNG state are restored, so switching the callback on does not change the training run itself.
    """

    def __init__(
        self,
        prompt,
        every_n_steps: int = 25,
        budgets: Sequence[int] = PAPER_BUDGETS,
        max_examples: int = 16,
        answer_tokens: int = 16,
        batch_size: int = 16,
        at_start: bool = True,
        log_plot: bool = True,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"scaling_curve.every_n_steps must be >= 1, got {every_n_steps}")
        if len(set(budgets)) < 2:
            raise ValueError(f"scaling_curve.budgets needs at least two budgets for a slope, got {list(budgets)}")
        self.prompt, self.every_n_steps = prompt, every_n_steps
        self.budgets = sorted({int(b) for b in budgets})
        self.max_examples, self.answer_tokens, self.batch_size = max_examples, answer_tokens, batch_size
        self.at_start, self.log_plot = at_start, log_plot
        self._last_step: int | None = None  # with gradient accumulation several batches end on the same step
        self._examples: list[AudioQAExample] | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: GRPOModule) -> None:
        if self.at_start:
            self._measure(trainer, pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GRPOModule, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self._measure(trainer, pl_module)

    def examples(self, trainer: L.Trainer) -> list[AudioQAExample]:
        """The first `max_examples` validation items (minus any that fail to load), loaded once and kept."""
        if self._examples is None:
            datamodule = trainer.datamodule
            dataset = getattr(datamodule, "val_set", None)
            if dataset is None:
                raise ValueError("ScalingCurveCallback needs a validation set: set data.val (datamodule.val_set)")
            items = [dataset[i] for i in range(min(len(dataset), self.max_examples))]
            collate = getattr(datamodule, "collate", None)  # drops skipped items and caps audio like training
            if collate is not None:
                self._examples = collate(items)["examples"]
            else:
                self._examples = [item for item in items if not isinstance(item, SkippedExample)]
        return self._examples

    def curve(self, pl_module: GRPOModule, examples: list[AudioQAExample]) -> ScalingCurve:
        """The scaling curve of the current policy on `examples` (greedy, budget forced)."""
        predictions = predict(
            pl_module.policy,
            examples,
            self.prompt,
            self.budgets,
            Decoding(),
            self.answer_tokens,
            max_new_tokens=None,
            batch_size=self.batch_size,
        )
        return curve_from_predictions([asdict(p) for p in predictions], self.budgets)

    def _measure(self, trainer: L.Trainer, pl_module: GRPOModule) -> None:
        step = trainer.global_step
        if step == self._last_step:
            return
        self._last_step = step
        # Every rank computes the (identical, greedy) curve: under FSDP or ZeRO-3 each forward is collective, so a
        # rank-zero-only generation would deadlock; under DDP the other ranks would be waiting for rank zero anyway.
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():  # sampling elsewhere keeps its random stream
            curve = self.curve(pl_module, self.examples(trainer))
        metrics = {f"scaling/accuracy@{b}": a for b, a in zip(curve.budgets, curve.accuracy, strict=True)}
        metrics |= {f"scaling/think_tokens@{b}": t for b, t in zip(curve.budgets, curve.mean_think_tokens, strict=True)}
        metrics.update(
            {
                "scaling/slope": curve.slope,
                "scaling/sweet_spot": float(curve.sweet_spot),
                "scaling/sweet_spot_accuracy": curve.sweet_spot_accuracy,
            }
        )
        if curve.slope_stderr is not None:
            metrics["scaling/slope_stderr"] = curve.slope_stderr
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
        if self.log_plot:
            title = f"{model_name(pl_module)}, step {step}: test-time scaling"
            log_figure(trainer.loggers, "scaling/curve", plot_curve(curve, title=title), step)
        log.info(
            "step %d: scaling slope %+.2g ± %s/token (%s), sweet spot L=%d (%.3f)",
            step,
            curve.slope,
            "?" if curve.slope_stderr is None else f"{curve.slope_stderr:.1g}",
            curve.trend,
            curve.sweet_spot,
            curve.sweet_spot_accuracy,
        )
        for warning in curve.warnings:
            log.warning("step %d: scaling curve: %s", step, warning)


def model_name(pl_module: GRPOModule) -> str:
    """The trained model's name for titles: its folder or Hub id (`config._name_or_path`)."""
    path = str(getattr(pl_module.policy.hf_model.config, "_name_or_path", "") or "policy")
    return Path(path).name if Path(path).is_absolute() else path
