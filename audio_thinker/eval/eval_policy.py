"""The model to evaluate: a base (hub id, path or embedded name), plus a saved peft adapter or training weights.

With `eval.ckpt_path`, the model is rebuilt from the run's own config beside the checkpoint
(`<run>/.hydra/config.yaml`, as `audio-thinker export` does), so a LoRA run's checkpoint evaluates without
repeating its `quant=lora model=...` overrides; `eval.run_config` names another file, or `null` keeps the eval
config's `model`. A run's config is read as data (`models.run_config.read_run_config`: resolved in full, only our
own `_target_`s anywhere in it), and either config's `model` may name only audio-thinker's loaders.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, open_dict

from audio_thinker.checkpoints.hf_folders import EvalWeights
from audio_thinker.models.hf_export import load_checkpoint_into
from audio_thinker.models.loading import build_policy, quiet_peft
from audio_thinker.models.policy import Policy
from audio_thinker.models.run_config import check_model_config, read_run_config

log = logging.getLogger(__name__)


def eval_model_config(model_cfg: DictConfig, ckpt_path: str | None, run_config: str | None = "auto") -> DictConfig:
    """The model config that rebuilds what is evaluated: the run's own beside a checkpoint, else `model_cfg`."""
    if not ckpt_path or run_config is None:
        return model_cfg
    path = Path(ckpt_path).parent.parent / ".hydra" / "config.yaml" if run_config == "auto" else Path(run_config)
    if not path.is_file():
        if run_config != "auto":
            raise FileNotFoundError(f"eval.run_config={run_config}: no such file")
        log.info("no run config at %s: the checkpoint is loaded into the eval config's model", path)
        return model_cfg
    # The eval config's own trust_remote_code is the user's consent; a run folder cannot grant it to itself.
    _, node = read_run_config(path, trust_remote_code=bool(model_cfg.get("trust_remote_code", False)))
    log.info("model config: %s (the checkpoint's run; eval.run_config=null uses the eval config's model)", path)
    return node


def load_eval_policy(
    model_cfg: DictConfig,
    adapter: str | None = None,
    ckpt_path: str | None = None,
    device: str = "auto",
    run_config: str | None = "auto",
) -> Policy:
    """Instantiate the model (`eval_model_config`) in the dtype for `device`, then load a peft adapter directory or
    a Lightning training checkpoint into it."""
    if adapter and ckpt_path:
        raise ValueError(
            "set eval.adapter or eval.ckpt_path, not both: a training checkpoint already holds the "
            "adapter weights of a LoRA run"
        )
    model_cfg = eval_model_config(model_cfg, ckpt_path, run_config)
    if ckpt_path:  # loading a run's weights: the model is rebuilt only by our own loaders, as `export` does
        model_cfg = check_model_config(model_cfg, "the eval config (model)", trust_remote_code=True)  # user's flag
    policy = build_policy(model_cfg, device)  # as training builds it
    if adapter:
        policy = attach_adapter(policy, adapter)
    if ckpt_path:  # its `policy.*` weights, read with weights_only=True; the model config must match the run's
        load_checkpoint_into(policy, ckpt_path)
    return policy


def attach_adapter(policy: Policy, path: str | Path) -> Policy:
    """The same policy class around `PeftModel.from_pretrained(base, path)` (adapters active, frozen)."""
    from peft import PeftModel

    if policy.has_adapters:
        raise ValueError(
            "eval.adapter loads saved adapters onto a plain base model, but this config already adds "
            "LoRA (model.lora): evaluate with quant=none"
        )
    if not (Path(path) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"eval.adapter={path} has no adapter_config.json: pass a peft save_pretrained dir")
    with quiet_peft():
        return type(policy)(PeftModel.from_pretrained(policy.model, str(path)), policy.processor)


def folder_model_config(model_cfg: DictConfig, weights: EvalWeights, adapter: str | None = None) -> DictConfig:
    """The model config for a `checkpoint-<step>` folder's own weights (`checkpoints.hf_folders.eval_weights`):
    the run's model without its `lora` (the folder's adapter goes onto the base), or with `path` = the folder."""
    if weights.adapter is None and weights.model_path is None:
        return model_cfg
    if weights.adapter and adapter:
        raise ValueError(f"set eval.adapter or eval.ckpt_path, not both: {weights.adapter} holds an adapter already")
    model_cfg = check_model_config(model_cfg, "the eval model config", trust_remote_code=True)  # a checked copy
    with open_dict(model_cfg):
        if "lora" in model_cfg:
            model_cfg.lora = None
        if weights.model_path:
            model_cfg.path = weights.model_path
    return model_cfg
