"""A run folder's config read as data: resolved in full, then only audio-thinker's model loader built from it.

`audio-thinker export` and `audio-thinker eval eval.ckpt_path=...` rebuild a checkpoint's model from the run's
`.hydra/config.yaml`. That file may come from someone else (a copied or tampered run folder), so it is data:

1. Every interpolation is resolved first (`model.lora: ${evil}` is followed to what `evil` holds, and a resolver
   that returns a node, `${oc.decode:...}`, to that node). A key under `model` that cannot be resolved is refused;
   elsewhere it is left out (`${hydra:...}` outside a Hydra run), since nothing outside `model` is built.
2. Under the resolved `model`, every `_target_` must be our model loader or a settings object it takes
   (`SAFE_MODEL_TARGETS`). Nothing else of the config is ever instantiated (the model card reads its values as
   text), so `_target_`s elsewhere stay inert data: a run that trained with a reward of the user's own
   (`my_rewards.brevity`) exports and evaluates like any other. Resolving first is what closes the old hole: once
   `model.lora: ${evil}` is resolved, what `evil` held is checked as part of `model`.
3. The model is built from the resolved copy, which must hold no interpolation (an escaped `\\${...}` resolves to
   text that would be read as one again): what runs is what was checked.

`trust_remote_code: true` and attention implementations outside `SAFE_ATTENTION` are refused as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

# What a model config from a run folder may instantiate: the loader and the settings objects it takes.
SAFE_MODEL_TARGETS = frozenset(
    {"audio_thinker.models.loading.load_policy", "peft.LoraConfig", "transformers.BitsAndBytesConfig"}
)
# transformers also accepts hub repositories of kernels here, which it downloads and runs: only these names.
SAFE_ATTENTION = (None, "sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")
MAX_DEPTH = 64  # deeper than any real config: a node that contains itself through an interpolation
_UNRESOLVED = object()


class UnsafeConfigError(ValueError):
    """A config that would run code other than our own; the message names the file, the key and the target."""


def targets(tree: Any, key: str) -> Iterator[tuple[str, str]]:
    """(dotted key of the node, its `_target_`) for every node of a plain dict/list tree."""
    if isinstance(tree, dict):
        if "_target_" in tree:
            yield key, str(tree["_target_"])
        for name, child in tree.items():
            yield from targets(child, f"{key}.{name}" if key else str(name))
    elif isinstance(tree, list):
        for index, child in enumerate(tree):
            yield from targets(child, f"{key}[{index}]")


def as_data(node: Any, key: str, unresolved: dict[str, str], depth: int = 0) -> Any:
    """`node` as plain dicts, lists and values with every interpolation resolved; the keys that could not be
    resolved go into `unresolved` (key -> why) and are left out."""
    if depth > MAX_DEPTH:
        raise UnsafeConfigError(f"{key}: nested deeper than {MAX_DEPTH} levels (a node that contains itself?)")
    if isinstance(node, DictConfig | ListConfig):
        if node._is_none():
            return None
        names = list(node.keys()) if isinstance(node, DictConfig) else list(range(len(node)))
        children = {}
        for name in names:
            child_key = (f"{key}.{name}" if key else str(name)) if isinstance(node, DictConfig) else f"{key}[{name}]"
            try:
                child = node[name]  # resolves an interpolation (to a value or to the node it names)
            except Exception as err:  # any resolver's failure: this key has no value here
                unresolved[child_key] = str(err).splitlines()[0]
                children[name] = _UNRESOLVED
                continue
            children[name] = as_data(child, child_key, unresolved, depth + 1)
        kept = {name: value for name, value in children.items() if value is not _UNRESOLVED}
        return kept if isinstance(node, DictConfig) else list(kept.values())
    return node


def _refuse(source: str, key: str, target: str, allowed: str) -> UnsafeConfigError:
    return UnsafeConfigError(
        f"{source}: {key}._target_={target!r} is not {allowed}; a run's config is data, so nothing else is built "
        "from it. Pass --config (export) or eval.run_config (eval) with the run's `model:` section written out "
        "(interpolations such as ${seed} replaced by values) if this model really is yours to build."
    )


def check_model_data(model: Any, source: str, trust_remote_code: bool) -> DictConfig:
    """The resolved `model` tree, checked (module docstring, steps 2 and 3), as the config to instantiate."""
    if not isinstance(model, dict):
        raise UnsafeConfigError(f"{source}: model must be a mapping with a _target_, got {type(model).__name__}")
    for key, target in targets(model, "model"):
        if target not in SAFE_MODEL_TARGETS:
            raise _refuse(source, key, target, f"one of audio-thinker's model loaders {sorted(SAFE_MODEL_TARGETS)}")
    if model.get("attn_implementation") not in SAFE_ATTENTION:
        raise UnsafeConfigError(
            f"{source}: model.attn_implementation={model['attn_implementation']!r} is not one of {list(SAFE_ATTENTION)}"
        )
    if model.get("trust_remote_code", False) and not trust_remote_code:
        raise UnsafeConfigError(
            f"{source}: model.trust_remote_code=true would run code shipped with {model.get('path')!r}; refused "
            "unless you pass --trust-remote-code (only for a model whose code you trust)"
        )
    node = OmegaConf.create(model)
    for key in interpolations(node, "model"):
        raise UnsafeConfigError(
            f"{source}: {key} still holds an interpolation once resolved (an escaped \\${{...}}); a model config "
            "from a run folder must resolve to plain values"
        )
    return node


def interpolations(node: Any, key: str) -> Iterator[str]:
    """Dotted keys under `node` whose value is an interpolation (without resolving it)."""
    if isinstance(node, DictConfig | ListConfig):
        names = list(node.keys()) if isinstance(node, DictConfig) else list(range(len(node)))
        for name in names:
            child_key = f"{key}.{name}" if isinstance(node, DictConfig) else f"{key}[{name}]"
            if OmegaConf.is_interpolation(node, name):
                yield child_key
            else:
                yield from interpolations(node._get_node(name), child_key)


def check_model_config(node: DictConfig, source: str, trust_remote_code: bool = False) -> DictConfig:
    """A `model` config (read from `source`) resolved and checked; instantiate what this returns, not `node`."""
    unresolved: dict[str, str] = {}
    model = as_data(node, "model", unresolved)
    for key, why in unresolved.items():
        raise UnsafeConfigError(f"{source}: {key} cannot be resolved ({why})")
    return check_model_data(model, source, trust_remote_code)


def read_run_config(path: str | Path, trust_remote_code: bool = False) -> tuple[DictConfig, DictConfig]:
    """A run's config file as data: (the whole config, resolved; its `model`, checked and ready to instantiate)."""
    source = str(path)
    unresolved: dict[str, str] = {}
    tree = as_data(OmegaConf.load(path), "", unresolved)
    if not isinstance(tree, dict) or "model" not in tree:
        raise UnsafeConfigError(f"{source}: no `model` section (is it a run's .hydra/config.yaml?)")
    for key, why in unresolved.items():
        if key == "model" or key.startswith(("model.", "model[")):
            raise UnsafeConfigError(f"{source}: {key} cannot be resolved ({why})")
    return OmegaConf.create(tree), check_model_data(tree["model"], source, trust_remote_code)
