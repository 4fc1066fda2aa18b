"""Export what training produced: the LoRA adapter (or the full model) plus the processor, and merged models.

An exported adapter directory loads with `PeftModel.from_pretrained(base, dir)`; a merged or fully fine-tuned
directory loads with its family's `saved_as` class (`models.families`). Both carry the processor and a model card
(`models.model_card`), so they are complete; `--push-to-hub REPO` uploads one (`models.hub`).

A checkpoint and its run folder are data: `export` rebuilds the model from the run's `.hydra/config.yaml`, read by
`models.run_config.read_run_config` (resolved in full, then only our own `_target_`s anywhere in it, only our model
loader and its settings objects under `model`), and `trust_remote_code: true` there is refused unless
`--trust-remote-code` is given. Anything else a copied or tampered run folder names would otherwise be imported and
called.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from audio_thinker.checkpoints.files import CheckpointReadError, nonfinite_weights, read_checkpoint
from audio_thinker.checkpoints.hf_folders import lightning_checkpoint
from audio_thinker.models.families import family_of
from audio_thinker.models.loading import build_policy
from audio_thinker.models.model_card import model_card, write_card
from audio_thinker.models.policy import Policy
from audio_thinker.models.run_config import read_run_config

log = logging.getLogger(__name__)

POLICY_PREFIX = "policy."


def export_policy(
    policy: Policy,
    out_dir: str | Path,
    run_cfg: DictConfig | None = None,
    step: int | None = None,
    run_dir: Path | None = None,
    merged: bool = False,
) -> Path:
    """Save the adapter (peft `save_pretrained`) or, without adapters, the whole model; plus the processor and a
    model card (`models.model_card`) filled from the run's config `run_cfg` (`merged`: a LoRA run, folded in)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    policy.model.save_pretrained(out)
    policy.processor.save_pretrained(out)
    config = policy.hf_model.config
    dtype = str(config.dtype).removeprefix("torch.")
    model_class = family_of(config.model_type).saved_as
    adapter = policy.has_adapters
    card = model_card(
        run_cfg, out, adapter=adapter, merged=merged, step=step, dtype=dtype, run_dir=run_dir, model_class=model_class
    )
    write_card(card, out)
    log.debug("exported %s to %s", "LoRA adapter" if adapter else "model", out)
    return out


def load_checkpoint_into(policy: Policy, ckpt_path: str | Path, checkpoint: dict | None = None) -> None:
    """Copy the `policy.*` weights of a Lightning training checkpoint (read from `ckpt_path` unless given as
    `checkpoint`) into `policy` (strict on those keys)."""
    checkpoint = checkpoint if checkpoint is not None else read_checkpoint(ckpt_path)  # weights_only: data, no code
    state = checkpoint["state_dict"]
    weights = {k[len(POLICY_PREFIX) :]: v for k, v in state.items() if k.startswith(POLICY_PREFIX)}
    if not weights:
        raise ValueError(f"{ckpt_path}: no 'policy.*' weights in this checkpoint; is it an audio-thinker checkpoint?")
    if broken := nonfinite_weights(weights):  # a diverged run's weights, or a checkpoint written by other code
        raise CheckpointReadError(
            f"checkpoint {ckpt_path}: {len(broken)} weight tensor(s) hold NaN or inf ({', '.join(broken[:3])}); "
            "use an earlier checkpoint of the run (its checkpoints/ folder)"
        )
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


def rebuild_policy(
    ckpt_path: str | Path, config_path: str | Path | None = None, trust_remote_code: bool = False
) -> tuple[Policy, DictConfig, dict]:
    """The policy of a training checkpoint: rebuilt from the run's config (read as data: `read_run_config`) in the
    dtype training used, its trained weights loaded; with the run config and the checkpoint.

    The base is loaded unquantized: a QLoRA run's adapter is the same on a full-precision base, and merging needs
    one. `model.dtype=auto` resolves to the dtype the checkpoint records (that of the training device).
    """
    config_path = run_config_path(ckpt_path, config_path)
    run_cfg, model_cfg = read_run_config(config_path, trust_remote_code)
    checkpoint = read_checkpoint(ckpt_path)
    dtype = model_cfg.get("dtype", "float32")
    if dtype == "auto":
        dtype = checkpoint.get("model_dtype", "auto")
    log.info("rebuilding the model from %s in %s", config_path, dtype)
    policy = build_policy(model_cfg, dtype=dtype, quantization=None, gradient_checkpointing=False)  # checked config
    load_checkpoint_into(policy, ckpt_path, checkpoint)
    return policy, run_cfg, checkpoint


def run_folder(ckpt_path: str | Path) -> Path:
    """The run folder of a checkpoint in `<run>/checkpoints/`."""
    return Path(ckpt_path).resolve().parent.parent


class NothingToMerge(ValueError):
    """A fully fine-tuned model has no adapter to fold in: the exported model already is the merged one."""


def merge_policy(
    policy: Policy,
    out_dir: str | Path,
    run_cfg: DictConfig | None = None,
    step: int | None = None,
    run_dir: Path | None = None,
) -> Path:
    """Fold the LoRA adapter into the base and save a plain transformers model, its processor and its card.

    The merged model keeps the base's dtype (the training dtype, see `rebuild_policy`) and follows its family's
    export rule (`models.families`): what trained is what is saved. A Qwen2-Audio model stays
    `Qwen2AudioForConditionalGeneration`; a Qwen2.5-Omni run trains, and so merges and saves, the thinker alone
    (`Qwen2_5OmniThinkerForConditionalGeneration`, audio and text in, text out; the talker that speaks is not part
    of it), which audio-thinker and transformers load as `model.path`.
    """
    if not policy.has_adapters:
        raise NothingToMerge(
            "nothing to merge: this run fine-tuned the whole model (no LoRA adapter), so the "
            "exported folder already holds the complete model"
        )
    merged = type(policy)(policy.model.merge_and_unload(), policy.processor)
    return export_policy(merged, out_dir, run_cfg, step, run_dir, merged=True)


def load_run_config(path: str | Path | None) -> DictConfig | None:
    """The run's composed config (`.hydra/config.yaml`) for model cards, or None when it is not there."""
    return OmegaConf.load(path) if path and Path(path).is_file() else None


def export_main(argv: list[str] | None = None) -> int:
    """`audio-thinker export CKPT --out DIR [--config CFG] [--merge] [--push-to-hub REPO]`."""
    import argparse

    from audio_thinker.models.hub import check_push_target, push_to_hub

    parser = argparse.ArgumentParser(prog="audio-thinker export", description=__doc__.splitlines()[0])
    what = "a training checkpoint (<run>/checkpoints/last.ckpt, or a checkpoint-<step> folder)"
    parser.add_argument("checkpoint", type=Path, help=what)
    parser.add_argument("--out", type=Path, required=True, help="directory to write the adapter/model into")
    parser.add_argument("--config", type=Path, default=None, help="run config (default: <run>/.hydra/config.yaml)")
    parser.add_argument("--merge", action="store_true", help="also merge the LoRA adapter into the base (<out>/merged)")
    what = "upload the result (the merged model with --merge, else the export) to this Hub repository"
    parser.add_argument("--push-to-hub", metavar="REPO", default=None, help=what)
    parser.add_argument("--private", action="store_true", help="with --push-to-hub: create the repository private")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow a config with model.trust_remote_code=true (runs code shipped with the model)",
    )
    args = parser.parse_args(argv)
    args.checkpoint = Path(lightning_checkpoint(str(args.checkpoint), "checkpoint"))  # checkpoint-<step>: its .ckpt
    if args.push_to_hub:
        check_push_target(args.push_to_hub)  # an impossible push fails now, not after the export
    print(f"model config: {run_config_path(args.checkpoint, args.config)}")
    policy, run_cfg, checkpoint = rebuild_policy(args.checkpoint, args.config, args.trust_remote_code)
    step, run_dir = checkpoint.get("global_step"), run_folder(args.checkpoint)
    upload = export_policy(policy, args.out, run_cfg, step, run_dir)
    print(f"exported {args.checkpoint} -> {upload}")
    if args.merge:
        try:
            upload = merge_policy(policy, args.out / "merged", run_cfg, step, run_dir)
            print(f"merged -> {upload}")
        except NothingToMerge as err:
            print(err)
    if args.push_to_hub:
        print(f"pushed {upload} -> {push_to_hub(upload, args.push_to_hub, args.private)}")
    return 0
