"""One record per model family: what audio-thinker knows about a transformers `model_type`, in one place.

Loading (`models.loading`), 4-bit quantization, the default LoRA targets, the embedded models (`models.tiny`) and
export (`models.hf_export`) all read `FAMILIES`; supporting a new family is one record here plus its `Policy`
subclass in `models.policy` (how its audio becomes embeddings). A `model_type` without a record loads as a text-only
causal LM (`TEXT`).

Export and merge rule: what trains is what is saved. `Family.load_model` returns the trained model (for a full
Qwen2.5-Omni checkpoint, its thinker: the talker that speaks is dropped), an export saves that model as is, and a
merge folds the LoRA deltas into it (`merge_and_unload`) and saves it; either folder opens with `saved_class`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import transformers
from torch import nn
from transformers import AutoProcessor, AutoTokenizer

from audio_thinker.models.audio_policy import Qwen2_5OmniThinkerPolicy, Qwen2AudioPolicy
from audio_thinker.models.policy import Policy
from audio_thinker.models.processors import AudioTextProcessor

# LoRA goes on the language model's attention and MLP projections; the audio tower stays frozen and whole.
LM_PROJECTIONS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
TEXT_PROJECTIONS = r".*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass(frozen=True)
class Family:
    """How one family is loaded, quantized, adapted and saved.

    Attributes:
        model_class: the transformers class (a name in `transformers`) that loads the checkpoint.
        processor_class: what loads its processor (`from_pretrained`); a tokenizer for text-only models.
        policy_class: the `Policy` subclass that trains it.
        not_quantized: modules kept in full precision under 4-bit quantization (the small, sensitive audio path and
            the head that feeds the logits), as paths from the trained model's root.
        submodule: the attribute of the loaded model that trains (`thinker` of a full Omni), or None for all of it.
        lora_targets: the default `target_modules` regex of `model.lora` (`target_modules: null`).
        saved_class: the transformers class that opens an exported or merged folder (default: `model_class`).
    """

    model_class: str
    processor_class: type
    policy_class: type[Policy]
    not_quantized: tuple[str, ...] = ()
    submodule: str | None = None
    lora_targets: str = TEXT_PROJECTIONS
    saved_class: str | None = None

    @property
    def prefix(self) -> str:
        """Where the trained model sits in the checkpoint's module paths (`thinker.` in a full Omni)."""
        return f"{self.submodule}." if self.submodule else ""

    def skip_modules(self) -> list[str]:
        """`not_quantized` as paths from the checkpoint's root: bitsandbytes reads them before `submodule` is taken."""
        return [self.prefix + name for name in self.not_quantized]

    def load_model(self, source: str, **kwargs) -> nn.Module:
        """The trained model of the checkpoint at `source` (`kwargs` go to `from_pretrained`)."""
        model = getattr(transformers, self.model_class).from_pretrained(source, **kwargs)
        return getattr(model, self.submodule) if self.submodule else model

    def load_processor(self, source: str, trust_remote_code: bool = False):
        """The processor (a tokenizer for text-only models); no weights are read."""
        return self.processor_class.from_pretrained(source, trust_remote_code=trust_remote_code)

    @property
    def saved_as(self) -> str:
        """The transformers class that opens this family's exported or merged folders."""
        return self.saved_class or self.model_class

    def load_saved(self, folder: str, **kwargs) -> nn.Module:
        """Open an exported or merged folder with plain transformers."""
        return getattr(transformers, self.saved_as).from_pretrained(folder, **kwargs)


# Any causal LM without audio: the degenerate family the same loop trains (and the benchmark compares with TRL).
TEXT = Family("AutoModelForCausalLM", AutoTokenizer, Policy)

QWEN2_AUDIO = Family(
    "Qwen2AudioForConditionalGeneration",
    AutoProcessor,
    Qwen2AudioPolicy,
    not_quantized=("model.audio_tower", "model.multi_modal_projector", "lm_head"),
    lora_targets=LM_PROJECTIONS,
)

# Omni's full processor needs torchvision for images/video; audio questions need only `AudioTextProcessor`.
QWEN2_5_OMNI_THINKER = Family(
    "Qwen2_5OmniThinkerForConditionalGeneration",
    AudioTextProcessor,
    Qwen2_5OmniThinkerPolicy,
    not_quantized=("model.audio_tower", "model.visual", "lm_head"),
    lora_targets=LM_PROJECTIONS,
)

FAMILIES: dict[str, Family] = {
    "qwen2_audio": QWEN2_AUDIO,
    "qwen2_5_omni_thinker": QWEN2_5_OMNI_THINKER,
    # A full Omni checkpoint: its thinker is taken and trained, the talker dropped; exports hold the thinker alone.
    "qwen2_5_omni": replace(
        QWEN2_5_OMNI_THINKER,
        model_class="Qwen2_5OmniForConditionalGeneration",
        submodule="thinker",
        saved_class=QWEN2_5_OMNI_THINKER.model_class,
    ),
}


def family_of(model_type: str) -> Family:
    """The record of `model_type`; `TEXT` for any model type without one."""
    return FAMILIES.get(model_type, TEXT)
