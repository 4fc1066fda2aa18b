"""Export what training produced: the LoRA adapter (or the full model) plus the processor, and merged models.

An exported adapter directory loads with `PeftModel.from_pretrained(base, dir)`; a merged or fully fine-tuned
directory loads with the model class's own `from_pretrained`. Both carry the processor, so they are complete.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from omegaconf import OmegaConf

from audio_thinker.models.policy import Policy

log = logging.getLogger(__name__)

POLICY_PREFIX = "policy."


def export_policy(policy: Policy, out_dir: str | Path) -> Path:
    """Save the adapter (peft `save_pretrained`) or, without adapters, the whole model; plus the processor."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    policy.model.save_pretrained(out)
    policy.processor.save_pretrained(out)
    log.info("exported %s to %s", "LoRA adapter" if policy.has_adapters else "model", out)
    return out


def load_checkpoint_into(policy: Policy, ckpt_path: str | Path) -> None:
    """Copy the `policy.*` weights of a Lightning training checkpoint into `policy` (strict on those keys)."""
    # weights_only: a checkpoint is data, never code to run.
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)["state_dict"]
    weights = {k[len(POLICY_PREFIX) :]: v for k, v in state.items() if k.startswith(POLICY_PREFIX)}
    if not weights:
        raise ValueError(f"{ckpt_path}: no 'policy.*' weights in this checkpoint; is it an audio-thinker checkpoint?")
    missing, unexpected = policy.load_state_dict(weights, strict=False)
    frozen = {name for name, param in policy.named_parameters() if not param.requires_grad}
    missing = [key for key in missing if key not in frozen]  # frozen weights are not stored: the base has them
    if unexpected or missing:
        raise ValueError(
            f"{ckpt_path}: checkpoint does not match the configured model (missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}); export with the run's own config (its .hydra/config.yaml)"
        )


def export_checkpoint(ckpt_path: str | Path, out_dir: str | Path, config_path: str | Path | None = None) -> Path:
    """Rebuild the run's policy from its Hydra config, load the checkpoint, and export it."""
    from hydra.utils import instantiate

    ckpt_path = Path(ckpt_path)
    config_path = Path(config_path) if config_path else ckpt_path.parent.parent / ".hydra" / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: the run's config is needed to rebuild the model; pass --config")
    policy = instantiate(OmegaConf.load(config_path).model)
    load_checkpoint_into(policy, ckpt_path)
    return export_policy(policy, out_dir)


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path, base: str | None = None) -> Path:
    """Fold a LoRA adapter into its base model and save a plain transformers model (+ processor)."""
    from peft import PeftConfig, PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM, AutoProcessor, AutoTokenizer

    from audio_thinker.models.loading import resolve_path

    base_path = resolve_path(base or PeftConfig.from_pretrained(str(adapter_dir)).base_model_name_or_path)
    if AutoConfig.from_pretrained(base_path).model_type == "qwen2_audio":
        from transformers import Qwen2AudioForConditionalGeneration as model_class
    else:
        model_class = AutoModelForCausalLM
    merged = PeftModel.from_pretrained(model_class.from_pretrained(base_path), str(adapter_dir)).merge_and_unload()
    out = Path(out_dir)
    merged.save_pretrained(out)
    try:
        AutoProcessor.from_pretrained(str(adapter_dir)).save_pretrained(out)
    except (OSError, ValueError):  # text-only models ship a tokenizer, not a processor
        AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(out)
    return out


class ExportCallback(L.Callback):
    """At the end of training, export the policy (adapter or full model + processor) to `dirpath`."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = dirpath

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.is_global_zero:
            export_policy(pl_module.policy, self.dirpath)


def export_main(argv: list[str] | None = None) -> int:
    """`audio-thinker export CKPT --out DIR [--config CFG] [--merge]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="audio-thinker export", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a training checkpoint (e.g. <run>/checkpoints/last.ckpt)")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the adapter/model into")
    parser.add_argument("--config", type=Path, default=None, help="run config (default: <run>/.hydra/config.yaml)")
    parser.add_argument("--merge", action="store_true", help="also merge the LoRA adapter into the base (<out>/merged)")
    args = parser.parse_args(argv)
    out = export_checkpoint(args.checkpoint, args.out, args.config)
    print(f"exported {args.checkpoint} -> {out}")
    if args.merge:
        print(f"merged -> {merge_adapter(out, out / 'merged')}")
    return 0
