"""`model.path=<a PEFT adapter folder>`: a LoRA checkpoint written by TRL, ms-SWIFT or peft, as a starting point.

Such a folder holds `adapter_config.json` (naming its base in `base_model_name_or_path`) and the adapter weights,
not a whole model. The policy starts from that base with the adapter merged into its weights; `model.lora`, when
set, then adds a fresh adapter of its own on top, as on any base. A 4-bit base (`quant=qlora_nf4`) cannot take a
merge: the error says to merge first.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)


def adapter_base(path: str) -> str | None:
    """The base model a PEFT adapter folder names ("" when it names none), or None when `path` is no such folder."""
    local = Path(path).expanduser()
    config = local / "adapter_config.json"
    if not local.is_dir() or (local / "config.json").is_file() or not config.is_file():
        return None
    try:
        base = json.loads(config.read_text()).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError):
        return ""
    return base if isinstance(base, str) else ""


def merge_adapter(model: nn.Module, folder: str) -> nn.Module:
    """`model` with the adapter of `folder` loaded and merged into its weights (a plain model again)."""
    from peft import PeftModel

    from audio_thinker.models.loading import quiet_peft

    with quiet_peft():
        peft_model = PeftModel.from_pretrained(model, folder)
    changes = [p for name, p in peft_model.named_parameters() if "lora_B" in name]
    if not changes or all(not torch.any(p) for p in changes):  # B starts at 0: nothing loaded, or never trained
        log.warning("model.path=%s: the adapter changes nothing (its lora_B weights are all zero)", folder)
    log.info("model.path=%s: a PEFT adapter, merged into its base %s", folder, model.name_or_path)
    model = peft_model.merge_and_unload()
    for param in model.parameters():  # peft froze the base; training decides (freezing, a new LoRA) as on any base
        param.requires_grad_(True)
    return model
