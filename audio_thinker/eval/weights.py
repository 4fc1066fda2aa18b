"""The model to evaluate: a base (hub id, path or embedded name), plus a saved peft adapter or training weights."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from audio_thinker.models.policy import Policy


def load_eval_policy(model_cfg: DictConfig, adapter: str | None = None, ckpt_path: str | None = None) -> Policy:
    """Instantiate `model_cfg`, then load a peft adapter directory or a Lightning training checkpoint into it."""
    if adapter and ckpt_path:
        raise ValueError("set eval.adapter or eval.ckpt_path, not both: a training checkpoint already holds the "
                         "adapter weights of a LoRA run")  # fmt: skip
    if ckpt_path:  # loading a run's weights: the model is rebuilt only by our own loaders, as `export` does
        from audio_thinker.models.export import check_model_config

        check_model_config(model_cfg, "the eval config (model)", trust_remote_code=True)  # the user's own flag
    policy = instantiate(model_cfg, _convert_="all")  # as training builds it
    if adapter:
        policy = attach_adapter(policy, adapter)
    if ckpt_path:  # its `policy.*` weights, read with weights_only=True; the model config must match the run's
        from audio_thinker.models.export import load_checkpoint_into  # imports lightning (seconds): only here

        load_checkpoint_into(policy, ckpt_path)
    return policy


def attach_adapter(policy: Policy, path: str | Path) -> Policy:
    """The same policy class around `PeftModel.from_pretrained(base, path)` (adapters active, frozen)."""
    from peft import PeftModel

    if policy.has_adapters:
        raise ValueError("eval.adapter loads saved adapters onto a plain base model, but this config already adds "
                         "LoRA (model.lora): evaluate with quant=none")  # fmt: skip
    if not (Path(path) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"eval.adapter={path} has no adapter_config.json: pass a peft save_pretrained dir")
    return type(policy)(PeftModel.from_pretrained(policy.model, str(path)), policy.processor)
