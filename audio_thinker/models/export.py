"""Export what training produced: the LoRA adapter (or the full model) plus the processor, and merged models.

An exported adapter directory loads with `PeftModel.from_pretrained(base, dir)`; a merged or fully fine-tuned
directory loads with the model class's own `from_pretrained`. Both carry the processor, so they are complete.

A checkpoint and its run folder are data: `export` rebuilds the model from the run's `.hydra/config.yaml`, so that
file may name only our own model loader and the settings objects it takes (`SAFE_MODEL_TARGETS`), and
`trust_remote_code: true` there is refused unless `--trust-remote-code` is given. Anything else a copied or
tampered run folder names would otherwise be imported and called.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from omegaconf import DictConfig, ListConfig, OmegaConf

from audio_thinker.models.policy import Policy

log = logging.getLogger(__name__)

POLICY_PREFIX = "policy."
# What a model config from a run folder may instantiate: the loader and the settings objects it takes.
SAFE_MODEL_TARGETS = frozenset(
    {"audio_thinker.models.loading.load_policy", "peft.LoraConfig", "transformers.BitsAndBytesConfig"}
)
# transformers also accepts hub repositories of kernels here, which it downloads and runs: only these names.
SAFE_ATTENTION = (None, "sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")


class UnsafeConfigError(ValueError):
    """A model config that would run code other than our loaders; the message names the file and the key."""


def check_model_config(node: DictConfig, source: str, trust_remote_code: bool = False) -> None:
    """Refuse a `model` config (read from `source`) naming targets outside `SAFE_MODEL_TARGETS`, attention
    implementations outside `SAFE_ATTENTION`, or `trust_remote_code` without the caller's consent."""
    for key, target in _targets(node, "model"):
        if target not in SAFE_MODEL_TARGETS:
            raise UnsafeConfigError(
                f"{source}: {key}._target_={target!r} is not one of audio-thinker's model loaders "
                f"{sorted(SAFE_MODEL_TARGETS)}; a run's config is data, so the model is rebuilt only from these. "
                "Pass --config with a config that uses them."
            )
    if node.get("attn_implementation", None) not in SAFE_ATTENTION:
        raise UnsafeConfigError(f"{source}: model.attn_implementation={node.attn_implementation!r} is not one of "
                                f"{list(SAFE_ATTENTION)}")  # fmt: skip
    if node.get("trust_remote_code", False) and not trust_remote_code:
        raise UnsafeConfigError(
            f"{source}: model.trust_remote_code=true would run code shipped with {node.get('path')!r}; refused "
            "unless you pass --trust-remote-code (only for a model whose code you trust)"
        )


def _targets(node, key: str):
    """(key, `_target_`) of every node under `node`, lists included."""
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield key, str(node._target_)
        for name in node:
            yield from _targets(node._get_node(name), f"{key}.{name}")
    elif isinstance(node, ListConfig):
        for index in range(len(node)):
            yield from _targets(node._get_node(index), f"{key}[{index}]")


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
    from audio_thinker.callbacks.resume import read_checkpoint

    state = read_checkpoint(ckpt_path)["state_dict"]  # weights_only: a checkpoint is data, never code to run
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


def run_config_path(ckpt_path: str | Path, config_path: str | Path | None = None) -> Path:
    """The config that rebuilds a checkpoint's model: `config_path`, else `<run>/.hydra/config.yaml`."""
    path = Path(config_path) if config_path else Path(ckpt_path).parent.parent / ".hydra" / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the run's config is needed to rebuild the model; pass --config")
    return path


def export_checkpoint(
    ckpt_path: str | Path, out_dir: str | Path, config_path: str | Path | None = None, trust_remote_code: bool = False
) -> Path:
    """Rebuild the run's policy from its Hydra config (checked by `check_model_config`), load the checkpoint, and
    export it."""
    from hydra.utils import instantiate

    config_path = run_config_path(ckpt_path, config_path)
    node = OmegaConf.load(config_path).model
    check_model_config(node, str(config_path), trust_remote_code)
    log.info("rebuilding the model from %s", config_path)
    policy = instantiate(node, _convert_="all")
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
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow a config with model.trust_remote_code=true (runs code shipped with the model)",
    )
    args = parser.parse_args(argv)
    print(f"model config: {run_config_path(args.checkpoint, args.config)}")
    out = export_checkpoint(args.checkpoint, args.out, args.config, args.trust_remote_code)
    print(f"exported {args.checkpoint} -> {out}")
    if args.merge:
        print(f"merged -> {merge_adapter(out, out / 'merged')}")
    return 0
