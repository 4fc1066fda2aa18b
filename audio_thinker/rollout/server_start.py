"""Our vLLM server started before the trainer loads its policy (`audio_thinker.train`).

On a GPU the server then takes its share of the card (`rollout.server.gpu_memory_utilization`) while the card is
still free: vLLM sizes its KV cache from the memory it finds at start, and would count a policy loading beside it
as its own. On a CPU its start (about a minute) overlaps the model load. With streamed weight sync (the default)
the server needs no weights to start, only the model's config, generation config and processor files (with
`--load-format dummy`): they are written here from the `model` config alone, and the first sync checks the served
model against the policy (`VLLMEngine._check_model`) and streams the real weights in.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from audio_thinker.models.adapter_start import adapter_base
from audio_thinker.models.families import family_of
from audio_thinker.models.loading import on_gpu, resolve_dtype
from audio_thinker.models.sources import read_model_config, resolve_path
from audio_thinker.rollout.vllm_engine import VLLMEngine, check_supported
from audio_thinker.rollout.weight_sync import write_served_files

log = logging.getLogger(__name__)


def starts_early(cfg: DictConfig) -> bool:
    """Whether this run's own server can start before the policy: engine=vllm, no `url`, streamed sync, and one
    device (ranks launched later each start their own at the first sync, as a spawned rank cannot inherit it)."""
    rollout, trainer = cfg.rollout, cfg.trainer
    server = rollout.get("server") or {}
    devices = trainer.get("devices", 1)
    one_device = devices == 1 or (OmegaConf.is_list(devices) and len(devices) == 1)
    own_streamed = server.get("url") is None and server.get("weight_sync", "stream") == "stream"
    return rollout.get("engine") == "vllm" and own_streamed and one_device and trainer.get("num_nodes", 1) == 1


def served_dtype_name(model_cfg: DictConfig, accelerator: str) -> str:
    """`weight_sync.served_dtype` before the policy exists: bfloat16 for a 4-bit base, else `model.dtype`."""
    if model_cfg.get("quantization") is not None:
        return "bfloat16"
    dtype = str(model_cfg.get("dtype", "float32"))
    return resolve_dtype(dtype, accelerator) if dtype == "auto" else dtype  # an explicit one was warned about once


def generation_config_of(source: str, config):
    """The generation config `from_pretrained` gives the model: the checkpoint's own, else one from its config."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(source)
    except OSError:
        return GenerationConfig.from_model_config(config)


def write_config_files(model_cfg: DictConfig, path: Path, dtype: str) -> Path:
    """The files `weight_sync.write_model_files` writes from a loaded policy, from its `model` config alone (an
    adapter folder's base; no weights read)."""
    base = adapter_base(str(model_cfg.path)) or str(model_cfg.path)  # a merged adapter leaves the base's config
    trust = bool(model_cfg.get("trust_remote_code", False))
    config = read_model_config(base, trust)
    family = family_of(config.model_type)
    check_supported(family.policy_class)  # refused before the model loads, not at the first sync
    source = resolve_path(base)
    processor = family.load_processor(source, trust)
    return write_served_files(path, config, generation_config_of(source, config), processor, dtype)


def start_rollout_server(cfg: DictConfig) -> VLLMEngine | None:
    """The run's vLLM engine with its server started (not yet healthy: `VLLMEngine.wait_ready`), or None when it
    cannot start before the policy (`starts_early`): the rollout callback then starts it at the first sync."""
    if not starts_early(cfg):
        return None
    server = OmegaConf.to_container(cfg.rollout.server, resolve=True)
    engine = VLLMEngine.from_options(server, cfg.rollout.get("generation_weights", "policy"))
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if on_gpu(accelerator) and not server.get("gpu_memory_utilization"):
        raise ValueError(
            "rollout.server.gpu_memory_utilization is null: set vLLM's share of the GPU (weights + KV cache, e.g. "
            "0.3). The server starts before the policy loads, and vLLM's own default (0.9) would leave the trainer "
            "a tenth of the card"
        )
    dtype = served_dtype_name(cfg.model, accelerator)
    try:
        model_dir = write_config_files(cfg.model, engine.sync_strategy().model_dir, dtype)
        engine.start_server(model_dir, dtype, on_gpu(accelerator))
    except BaseException:
        engine.close()
        raise
    log.info("the vLLM server starts before the policy loads (from %s's config)", cfg.model.path)
    return engine
