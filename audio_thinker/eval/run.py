"""`audio-thinker eval`: grade a model on a dataset split and measure its test-time scaling curve.

Writes to the Hydra output directory: `predictions.jsonl` (one graded completion per line), `metrics.json`
(the free pass's accuracy by task, difficulty, category and sub-category under the headline scorer and under
every scorer, think rate, format-valid rate, lengths, examples left out; each budget under `by_budget`),
`predictions_official.json` for MMAU files (MMAU's own scorer's input, see `eval.official`), and with
`eval.budgets`: `scaling.json` (accuracy per budget, slope, intercept, sweet spot) and `scaling.png`.
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

from audio_thinker.data.controls import AudioControl
from audio_thinker.data.errors import SkippedExample
from audio_thinker.eval.budget import Decoding
from audio_thinker.eval.examples import LazyExamples, choose_indices, default_scorer
from audio_thinker.eval.metrics import by_budget, compute_metrics, write_predictions
from audio_thinker.eval.official import official_items, write_official
from audio_thinker.eval.predict import predict
from audio_thinker.eval.scaling import plot_curve, scaling_curve
from audio_thinker.eval.weights import load_eval_policy
from audio_thinker.format.scorers import SCORERS
from audio_thinker.jobs import set_cpu_threads

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
        ckpt_path: a Lightning checkpoint from `audio-thinker train` whose policy weights are loaded.
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
        return Decoding(self.do_sample, self.num_samples, self.temperature, self.top_p, self.top_k)


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
    if cap:
        from audio_thinker.data.datamodule import cap_audio  # imports lightning (seconds): only when capping
    prepare = (lambda example: cap_audio(example, cap)) if cap else (lambda example: example)
    return LazyExamples(dataset, choose_indices(dataset, max_examples, seed), prepare)


def skipped_report(examples: LazyExamples) -> list[dict]:
    """The records and clips left out (bad records under on_error=skip, then unloadable clips)."""
    skipped: list[SkippedExample] = [*getattr(examples.dataset, "skipped_records", []), *examples.skipped]
    return [{"id": s.id, "where": s.where, "kind": s.kind, "reason": s.reason} for s in skipped]


def evaluate(cfg: DictConfig) -> dict:
    """Run the evaluation `cfg` describes, write its files to the Hydra output directory, return the metrics."""
    from audio_thinker.config_checks import check_eval_config

    check_eval_config(cfg)  # the cheap parts, before the model loads
    set_cpu_threads(cfg.get("cpu_threads"))
    settings = EvalSettings.from_config(cfg.eval)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    policy = load_eval_policy(cfg.model, settings.adapter, settings.ckpt_path).to(resolve_device(settings.device))
    examples = load_examples(cfg.data, settings.split, settings.max_examples, cfg.seed)
    scorer = default_scorer(examples.dataset) if settings.scorer == "auto" else settings.scorer
    template = instantiate(cfg.rollout.prompt)
    log.info("evaluating %d %s examples, budgets %s, scorer %s", len(examples), settings.split, settings.budgets,
             scorer)  # fmt: skip
    predictions = predict(
        policy, examples, template, settings.budgets, settings.decoding(), settings.answer_tokens,
        settings.max_new_tokens, settings.batch_size, progress=True, scorer=scorer, total=len(examples),
    )  # fmt: skip
    if not predictions:
        raise ValueError(f"none of the {len(examples)} {settings.split} examples could be loaded: see the warnings "
                         f"above, or run `audio-thinker data check` on the manifest")  # fmt: skip
    records = [asdict(p) for p in predictions]
    write_predictions(records, out_dir / "predictions.jsonl")
    metrics = compute_metrics(records)
    metrics["scorer"] = scorer
    metrics["skipped"] = skipped_report(examples)
    metrics["settings"] = {"model": cfg.model.path, "prompt": template.mode, **asdict(settings)}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log.info("accuracy %.3f (%s) over %d examples (free pass), %d left out", metrics["accuracy"], scorer,
             metrics["n_examples"], len(metrics["skipped"]))  # fmt: skip
    if any(record for record, _ in examples.items.values()):  # a benchmark file with its original items (MMAU)
        groups = by_budget(records)
        top = groups.get(None, records)  # the predictions metrics.json's top level summarises
        write_official(out_dir / "predictions_official.json",
                       official_items(top, examples.items, getattr(template, "letter_options", True)))  # fmt: skip
    if settings.budgets:
        curve = scaling_curve(settings.budgets, [metrics["by_budget"][str(b)]["accuracy"] for b in settings.budgets])
        (out_dir / "scaling.json").write_text(json.dumps(curve.to_dict(), indent=2) + "\n")
        plot_curve(curve, out_dir / "scaling.png", title=f"{cfg.model.path}: test-time scaling")
        log.info("scaling: slope %s per token, sweet spot L=%d (%.3f)", curve.slope, curve.sweet_spot,
                 curve.sweet_spot_accuracy)  # fmt: skip
    log.info("wrote %s", out_dir)
    return metrics
