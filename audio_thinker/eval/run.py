"""`audio-thinker eval`: grade a model on a dataset split and measure its test-time scaling curve.

Writes to the Hydra output directory: `predictions.jsonl` (one graded completion per line), `metrics.json`
(the free pass's accuracy by task, difficulty, category and sub-category under the headline scorer and under
every scorer, think rate, format-valid rate, lengths, examples left out; each budget under `by_budget`),
`predictions_official.json` for MMAU files (MMAU's own scorer's input, see `eval.official`), and with
`eval.budgets`: `scaling.json` (per budget: accuracy, n, 95% interval, reasoning tokens used; chance; the slope
with its standard error, interval and trend; the sweet spot; warnings; see `eval.scaling_curve`) and `scaling.png`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from audio_thinker.checkpoints.hf_folders import eval_weights
from audio_thinker.config_checks import EVAL_RULES, ConfigError, build, check_data_values, check_model_path, check_rules
from audio_thinker.data.audio import cap_audio
from audio_thinker.data.controls import AudioControl
from audio_thinker.data.errors import SkippedExample
from audio_thinker.eval.eval_policy import eval_model_config, folder_model_config, load_eval_policy
from audio_thinker.eval.examples import LazyExamples, choose_indices, default_scorer
from audio_thinker.eval.metrics import by_budget, compute_metrics, write_predictions
from audio_thinker.eval.official import official_items, write_official
from audio_thinker.eval.predict import predict
from audio_thinker.eval.scaling_curve import curve_from_predictions
from audio_thinker.eval.scaling_plot import plot_curve
from audio_thinker.format.scorers import SCORERS
from audio_thinker.jobs import set_cpu_threads
from audio_thinker.models.decoding import Decoding
from audio_thinker.user_code import make_importable

log = logging.getLogger(__name__)


@dataclass
class EvalSettings:
    """The `eval:` node of configs/eval.yaml.

    Attributes:
        split: the `data` config's dataset to evaluate (`val` or `train`).
        max_examples: None (default): every example of the split; N: a sample of N stratified by task.
        scorer: the headline `accuracy`'s scorer: "mmau" (MMAU's published rule), "choice" (our matcher) or
            "auto" (mmau for MMAU files, else choice). Every scorer is reported under `scorers` either way.
        budgets: reasoning budgets L in tokens for the scaling curve (empty or None: no curve).
        answer_tokens: the answer budget after a forced `</think><answer>`.
        max_new_tokens: the free (unforced) pass's limit; None skips the free pass.
        do_sample / num_samples / temperature / top_p / top_k: greedy by default, or n samples per example.
        batch_size: examples per generation batch (each example's audio is encoded once per batch).
        device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        adapter: a peft adapter directory to load onto the base model.
        ckpt_path: a Lightning checkpoint from `audio-thinker train` whose policy weights are loaded, or its
            `checkpoint-<step>` folder (that step's checkpoint, else the folder's own adapter or model).
        run_config: with `ckpt_path`, the config whose `model` rebuilds the run's model: "auto" (the run's own
            `.hydra/config.yaml` beside the checkpoint, when there is one), a file, or None (this config's `model`).
    """

    split: str = "val"
    max_examples: int | None = None
    scorer: str = "auto"
    budgets: list[int] | None = None
    answer_tokens: int = 16
    max_new_tokens: int | None = 256
    do_sample: bool = False
    num_samples: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    batch_size: int = 16
    device: str = "auto"
    adapter: str | None = None
    ckpt_path: str | None = None
    run_config: str | None = "auto"

    def __post_init__(self) -> None:
        self.budgets = sorted({int(b) for b in self.budgets or []})
        if self.budgets and self.budgets[0] < 0:
            raise ValueError(f"eval.budgets must be >= 0 tokens, got {self.budgets}")
        if self.batch_size < 1:
            raise ValueError(f"eval.batch_size must be >= 1, got {self.batch_size}")
        if self.scorer != "auto" and self.scorer not in SCORERS:
            raise ValueError(f"eval.scorer={self.scorer!r} is unknown; use auto or one of {sorted(SCORERS)}")
        if self.max_examples is not None and self.max_examples < 1:
            raise ValueError(f"eval.max_examples must be >= 1 or null (every example), got {self.max_examples}")
        if not self.budgets and self.max_new_tokens is None:
            raise ValueError("nothing to evaluate: eval.budgets is empty and eval.max_new_tokens=null")

    @classmethod
    def from_config(cls, node: DictConfig) -> EvalSettings:
        """Build from the config node; an unknown key fails here, naming the known ones."""
        values = OmegaConf.to_container(node, resolve=True)
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown eval setting(s) {sorted(unknown)}; known: {[f.name for f in fields(cls)]}")
        return cls(**values)

    def decoding(self) -> Decoding:
        """The generation settings."""
        return Decoding(self.do_sample, self.temperature, self.top_p, self.top_k, self.num_samples, prefix="eval.")


def resolve_device(name: str) -> torch.device:
    """ "auto" is the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_examples(data_cfg: DictConfig, split: str, max_examples: int | None, seed: int = 0) -> LazyExamples:
    """The examples of `data_cfg[split]` to grade (all, or a stratified sample), loaded lazily, audio capped."""
    if data_cfg.get(split) is None:
        raise ValueError(f"eval.split={split!r}: the data config has no {split!r} dataset")
    dataset = instantiate(data_cfg[split])  # only this split: other splits may be unset (`???`) in a manifest config
    if data_cfg.get("audio_control"):  # the debugging control, as in training
        dataset = AudioControl(dataset, data_cfg.audio_control, data_cfg.get("seed", seed))
    cap = data_cfg.get("max_audio_seconds")
    prepare = (lambda example: cap_audio(example, cap)) if cap else (lambda example: example)
    return LazyExamples(dataset, choose_indices(dataset, max_examples, seed), prepare)


def skipped_report(examples: LazyExamples) -> list[dict]:
    """The records and clips left out (bad records under on_error=skip, then unloadable clips)."""
    skipped: list[SkippedExample] = [*getattr(examples.dataset, "skipped_records", []), *examples.skipped]
    return [{"id": s.id, "where": s.where, "kind": s.kind, "reason": s.reason} for s in skipped]


def model_title(path: str, settings: EvalSettings) -> str:
    """What was evaluated, for plot titles: the model and its checkpoint or adapter."""
    if settings.ckpt_path:
        return f"{path} @ {Path(settings.ckpt_path).parent.parent.name}/{Path(settings.ckpt_path).name}"
    return f"{path} + {Path(settings.adapter).name}" if settings.adapter else path


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:.2g}"


def check_eval_config(cfg: DictConfig) -> None:
    """Validate the cheap parts of an evaluation config before the model is built."""
    check_rules(cfg, EVAL_RULES)
    settings = build("eval", lambda: EvalSettings.from_config(cfg.eval))
    if OmegaConf.select(cfg, f"data.{settings.split}", default=None) is None:
        raise ConfigError(f"eval.split: the data config has no {settings.split!r} dataset (data.{settings.split})")
    check_data_values(cfg, (settings.split,))
    check_model_path(cfg)
    build("rollout.prompt", lambda: instantiate(cfg.rollout.prompt))


def evaluate(cfg: DictConfig) -> dict:
    """Run the evaluation `cfg` describes, write its files to the Hydra output directory, return the metrics."""
    make_importable()  # a `_target_` of the user's own imports from where they run
    check_eval_config(cfg)  # the cheap parts, before the model loads
    set_cpu_threads(cfg.get("cpu_threads"))
    settings = EvalSettings.from_config(cfg.eval)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    device = resolve_device(settings.device)
    weights = eval_weights(settings.ckpt_path)  # a checkpoint-<step> folder: its step's .ckpt, else its own weights
    model_cfg = eval_model_config(cfg.model, settings.ckpt_path, settings.run_config)
    model_cfg = folder_model_config(model_cfg, weights, settings.adapter)
    adapter = weights.adapter or settings.adapter
    policy = load_eval_policy(model_cfg, adapter, weights.ckpt_path, device.type, run_config=None).to(device)
    examples = load_examples(cfg.data, settings.split, settings.max_examples, cfg.seed)
    scorer = default_scorer(examples.dataset) if settings.scorer == "auto" else settings.scorer
    template = instantiate(cfg.rollout.prompt)
    log.info(
        "evaluating %d %s examples, budgets %s, scorer %s", len(examples), settings.split, settings.budgets, scorer
    )
    predictions = predict(
        policy,
        examples,
        template,
        settings.budgets,
        settings.decoding(),
        settings.answer_tokens,
        settings.max_new_tokens,
        settings.batch_size,
        progress=True,
        scorer=scorer,
        total=len(examples),
    )
    if not predictions:
        raise ValueError(
            f"none of the {len(examples)} {settings.split} examples could be loaded: see the warnings "
            f"above, or run `audio-thinker data check` on the manifest"
        )
    records = [asdict(p) for p in predictions]
    write_predictions(records, out_dir / "predictions.jsonl")
    metrics = compute_metrics(records)
    metrics["scorer"] = scorer
    metrics["skipped"] = skipped_report(examples)
    metrics["settings"] = {"model": model_cfg.path, "prompt": template.mode, **asdict(settings)}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log.info(
        "accuracy %.3f (%s) over %d examples (free pass), %d left out",
        metrics["accuracy"],
        scorer,
        metrics["n_examples"],
        len(metrics["skipped"]),
    )
    if any(record for record, _ in examples.items.values()):  # a benchmark file with its original items (MMAU)
        groups = by_budget(records)
        top = groups.get(None, records)  # the predictions metrics.json's top level summarises
        write_official(
            out_dir / "predictions_official.json",
            official_items(top, examples.items, getattr(template, "letter_options", True)),
        )
    if settings.budgets:
        curve = curve_from_predictions(records, settings.budgets)
        (out_dir / "scaling.json").write_text(json.dumps(curve.to_dict(), indent=2) + "\n")
        plot_curve(curve, out_dir / "scaling.png", title=f"{model_title(model_cfg.path, settings)}: test-time scaling")
        log.info(
            "scaling: slope %s ± %s per token (%s), sweet spot L=%d (%.3f)",
            _fmt(curve.slope),
            _fmt(curve.slope_stderr),
            curve.trend,
            curve.sweet_spot,
            curve.sweet_spot_accuracy,
        )
        for warning in curve.warnings:
            log.warning("scaling curve: %s", warning)
    log.info("wrote %s", out_dir)
    return metrics
