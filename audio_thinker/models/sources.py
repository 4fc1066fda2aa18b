"""Where a model comes from (an embedded name, a local directory or a Hub id), with errors that say which it is not.

transformers treats any string it cannot find on disk as a Hub id, so a mistyped local path used to fail with
"Repo id must be in the form 'repo_name' or 'namespace/repo_name'", and an uncached id under `HF_HUB_OFFLINE=1`
with a generic "couldn't connect". `check_model_source` (cheap: no download, no weights) runs before anything
loads; `read_model_config` translates what transformers raises when the source still cannot be read.
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import constants, try_to_load_from_cache
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from audio_thinker.models.embedded_files import NAMES as EMBEDDED
from audio_thinker.models.embedded_files import embedded_model_dir


class ModelSourceError(ValueError):
    """A model path that is neither an embedded name, a local model directory nor a readable Hub id."""


def resolve_path(path: str) -> str:
    """An embedded name becomes its shipped directory (hash-checked); anything else goes to `from_pretrained` as is."""
    return str(embedded_model_dir(path)) if path in EMBEDDED else path


def hub_offline() -> bool:
    """Whether `HF_HUB_OFFLINE` forbids Hub requests (read now, so a test or a launcher may set it late)."""
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in constants.ENV_VARS_TRUE_VALUES or constants.HF_HUB_OFFLINE


def check_model_source(path: str, key: str = "model.path") -> None:
    """Fail, naming `key`, when `path` cannot be a model: not embedded, not a model directory, not a Hub id (or,
    offline, a Hub id that is not in the local cache)."""
    if path in EMBEDDED:
        return
    from audio_thinker.models.adapter_start import adapter_base

    if base := adapter_base(path):  # a PEFT adapter folder (TRL, ms-SWIFT): its base must be a model
        return check_model_source(base, f"{key}={path!r} (a PEFT adapter) base_model_name_or_path")
    local = Path(path).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            adapter = (local / "adapter_config.json").is_file()
            hint = (
                "it holds a LoRA adapter: set model.path to its base model and load the adapter with eval.adapter "
                "(or give adapter_config.json a base_model_name_or_path, and model.path=<this folder> merges it)"
                if adapter
                else "point it at a save_pretrained directory"
            )
            raise ModelSourceError(
                f"{key}={path!r}: the directory has no config.json, so it is not a transformers model; {hint}"
            )
        return
    try:
        validate_repo_id(path)
    except HFValidationError:
        raise ModelSourceError(
            f"{key}={path!r}: not a local directory and not a Hub id (`name` or `owner/name`); check the path "
            f"(relative paths start from {Path.cwd()}), or use an embedded model: {', '.join(EMBEDDED)}"
        ) from None
    if hub_offline() and not isinstance(try_to_load_from_cache(path, "config.json"), str):
        raise ModelSourceError(_offline_message(path, key))


def _offline_message(path: str, key: str) -> str:
    return (
        f"{key}={path!r}: not a local directory, and HF_HUB_OFFLINE=1 allows only Hub models already in the cache "
        f"({constants.HF_HUB_CACHE}), which does not hold {path!r}; download it where there is a network "
        f"(`hf download {path}`) or set {key} to a local copy"
    )


def read_model_config(path: str, trust_remote_code: bool = False, key: str = "model.path"):
    """`AutoConfig.from_pretrained` of an embedded name, directory or Hub id, its failures explained."""
    from transformers import AutoConfig

    check_model_source(path, key)
    try:
        return AutoConfig.from_pretrained(resolve_path(path), trust_remote_code=trust_remote_code)
    except OSError as err:
        if Path(path).expanduser().is_dir():
            raise
        if hub_offline():
            raise ModelSourceError(_offline_message(path, key)) from err
        raise ModelSourceError(
            f"{key}={path!r}: not a local directory, and the Hugging Face Hub did not give its config ({err}). "
            "Check the id and the network; without a network, set HF_HUB_OFFLINE=1 to use the Hub cache, or set "
            f"{key} to a local copy"
        ) from err
