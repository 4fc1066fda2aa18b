"""The model card (`README.md`) of an exported or checkpointed model: what it is, how it was trained, how it scored.

peft's `save_pretrained` leaves a placeholder card ("Model Card for Model ID", every field "[More Information
Needed]"); ours is filled from the run's own config: the base model, the method (GRPO variant, LoRA or full
fine-tuning, quantization), the reward suite and its weights, the steps, the data, and the evaluation numbers and
scaling plot when `audio-thinker eval` left them in the run folder. The metadata block is `huggingface_hub`'s
`ModelCardData`, so the Hub reads `base_model`, `library_name` and the tags.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from omegaconf import DictConfig, OmegaConf

from audio_thinker.models.sources import EMBEDDED


def _get(cfg: DictConfig | None, key: str, default: Any = None) -> Any:
    """A value of the run config, or `default` when absent or when it names something only a live run resolves."""
    if cfg is None:
        return default
    value = OmegaConf.select(cfg, key, default=default, throw_on_resolution_failure=False)
    return default if value is None else value


def _short(target: Any) -> str:
    """`audio_thinker.rewards.outcome.AccuracyReward` -> `AccuracyReward`."""
    return str(target).rsplit(".", 1)[-1]


def _is_hub_id(path: str) -> bool:
    if path in EMBEDDED or Path(path).expanduser().exists():
        return False
    try:
        validate_repo_id(path)
    except HFValidationError:
        return False
    return True


def base_model_line(path: str) -> str:
    """The base model in words: a Hub link, an embedded model, or a local path."""
    if path in EMBEDDED:
        return f"`{path}`, audio-thinker's embedded tiny model (random weights, built offline; not on the Hub)"
    if _is_hub_id(path):
        return f"[{path}](https://huggingface.co/{path})"
    return f"`{path}` (a local directory)"


def method_lines(cfg: DictConfig | None, adapter: bool, dtype: str | None, merged: bool = False) -> list[str]:
    """GRPO variant, adapters (`merged` into the base) or full fine-tuning, quantization, sampling and prompt."""

    def v(key: str, default: Any = None) -> Any:
        return _get(cfg, key, default)

    if v("model.lora") is not None:
        targets = v("model.lora.target_modules") or "the language model's attention and MLP projections"
        tuning = f"LoRA adapters (r={v('model.lora.r')}, alpha={v('model.lora.lora_alpha')}) on {targets}"
    else:
        tuning = "LoRA adapters" if adapter or merged else "full fine-tuning"
    tuning += ", merged into the base weights" if merged else ""
    if v("model.quantization") is not None:
        tuning += ", 4-bit NF4 base (QLoRA)"
    lines = [f"- Fine-tuning: {tuning}; weights in {dtype or v('model.dtype', 'unknown')}"]
    if cfg is None:
        return lines
    loss = (
        f"GRPO, `{v('loss.aggregation')}` aggregation, beta={v('loss.beta')}, epsilon={v('loss.epsilon')}, "
        f"{v('loss.kl_estimator')} KL, importance sampling per {v('loss.importance_sampling_level')}, rewards "
        f"scaled by {v('loss.scale_rewards')}"
    )
    sampling = (
        f"G={v('rollout.group_size')} completions per prompt, up to {v('rollout.max_new_tokens')} new tokens, "
        f"temperature {v('rollout.temperature')}, `{v('rollout.prompt.mode')}` prompt"
    )
    return [f"- Objective: {loss}", f"- Sampling: {sampling}", *lines]


def reward_lines(cfg: DictConfig | None) -> list[str]:
    """Each reward term with its class and weight, and how they combine."""
    terms = _get(cfg, "reward.terms") or {}
    lines = []
    for name in terms:
        if terms[name] is not None:
            target, weight = (
                _get(cfg, f"reward.terms.{name}._target_", "?"),
                _get(cfg, f"reward.terms.{name}.weight", 1),
            )
            lines.append(f"- `{name}` ({_short(target)}), weight {weight}")
    combiner = _get(cfg, "reward.combiner._target_")
    return (lines or ["unknown (no run config)"]) + ([f"- combined by {_short(combiner)}"] if combiner else [])


def data_line(cfg: DictConfig | None) -> str:
    """The training data: a manifest or dataset path, or the synthetic tasks."""
    target = _short(_get(cfg, "data.train._target_", "unknown"))
    if target == "SyntheticAudioQA":
        return (
            f"audio-thinker's synthetic audio questions (pitch, loudness, duration, beeps, rhythm, melody), "
            f"{_get(cfg, 'data.train.size')} examples, seed {_get(cfg, 'data.train.seed')}"
        )
    path = _get(cfg, "data.train.path", "?")
    split = _get(cfg, "data.train.split")
    return f"`{path}`" + (f" (split `{split}`)" if split else "") + f", read by {target}"


def find_evaluation(run_dir: Path | None) -> Path | None:
    """The folder of the newest `metrics.json` under `run_dir` (an `audio-thinker eval hydra.run.dir=<run>/eval`)."""
    if run_dir is None or not run_dir.is_dir():
        return None
    found = sorted(run_dir.rglob("metrics.json"), key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None


def evaluation_lines(eval_dir: Path | None, out_dir: Path) -> list[str]:
    """Accuracy and the scaling curve of an evaluation; its plot is copied beside the card."""
    if eval_dir is None:
        return [
            "No evaluation was found in the run folder (`audio-thinker eval eval.ckpt_path=<checkpoint> "
            "hydra.run.dir=<run>/eval` writes one there)."
        ]
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    lines = [
        f"- Accuracy {metrics.get('accuracy', float('nan')):.3f} on {metrics.get('n_examples', '?')} examples "
        f"(`{metrics.get('scorer', '?')}` scorer, free generation), think rate "
        f"{metrics.get('think_rate', float('nan')):.2f}"
    ]
    scaling = eval_dir / "scaling.json"
    if scaling.is_file():
        curve = json.loads(scaling.read_text())
        if curve.get("slope") is not None:
            stderr = curve.get("slope_stderr")
            spread = f" ± {stderr:.2g}" if stderr is not None else ""
            trend = curve.get("trend", "see scaling.json")
            lines.append(
                f"- Test-time scaling: slope {curve['slope']:+.2g}{spread} accuracy per reasoning token "
                f"({trend}); sweet spot L={curve.get('sweet_spot')}"
            )
    if (eval_dir / "scaling.png").is_file():
        shutil.copyfile(eval_dir / "scaling.png", out_dir / "scaling.png")
        lines += ["", "![test-time scaling](scaling.png)"]
    return lines


def model_card(
    run_cfg: DictConfig | None,
    out_dir: Path,
    *,
    adapter: bool,
    merged: bool = False,
    step: int | None = None,
    dtype: str | None = None,
    run_dir: Path | None = None,
    model_class: str = "AutoModelForCausalLM",
) -> ModelCard:
    """The card of the model saved in `out_dir` (an adapter when `adapter`; a LoRA run's model with its adapter folded
    in when `merged`), trained by the run `run_cfg` describes; `model_class` opens it in transformers."""
    path = str(_get(run_cfg, "model.path", "unknown"))
    tags = ["audio-thinker", "grpo", "reinforcement-learning", "audio", "audio-question-answering"]
    tags += ["lora"] if adapter or merged else []
    data = ModelCardData(
        base_model=path if _is_hub_id(path) else None, library_name="peft" if adapter else "transformers", tags=tags
    )
    steps = f"{step}" if step is not None else "unknown"
    max_steps = _get(run_cfg, "trainer.max_steps")
    body = [
        f"# {'LoRA adapter' if adapter else 'Merged model' if merged else 'Model'} trained with audio-thinker",
        "",
        "Reinforcement learning (GRPO) that teaches an audio language model when and how to reason about sound.",
        "",
        "## Training",
        "",
        f"- Base model: {base_model_line(path)}",
        *method_lines(run_cfg, adapter, dtype, merged),
        f"- Steps: {steps}" + (f" of {max_steps}" if max_steps not in (None, -1) else ""),
        f"- Data: {data_line(run_cfg)}",
        "",
        "## Rewards",
        "",
        *reward_lines(run_cfg),
        "",
        "## Evaluation",
        "",
        *evaluation_lines(find_evaluation(run_dir), out_dir),
        "",
        "## Use",
        "",
        usage(path, adapter, model_class),
        "",
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))


def usage(path: str, adapter: bool, model_class: str = "AutoModelForCausalLM") -> str:
    """How to load it, in audio-thinker and in plain transformers/peft."""
    if adapter:
        return (
            "```bash\naudio-thinker eval model.path=" + path + " eval.adapter=<this folder>\n```\n"
            'In Python: `PeftModel.from_pretrained(<base model>, "<this folder>")`; '
            "`audio-thinker export ... --merge` folds the adapter into the base."
        )
    return (
        "```bash\naudio-thinker eval model.path=<this folder>\n```\n"
        f'In Python: `{model_class}.from_pretrained("<this folder>")`, with `AutoProcessor`.'
    )


def write_card(card: ModelCard, out_dir: Path) -> Path:
    """Save `card` as `out_dir/README.md` (replacing peft's placeholder)."""
    path = Path(out_dir) / "README.md"
    card.save(path)
    return path
