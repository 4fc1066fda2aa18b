"""Which recipe a run's settings came from, said in one line when it starts.

train.yaml and eval.yaml pick `recipe/<model>_<data>.yaml` when it exists (`optional recipe: ${model}_${data}`).
When it does not, the config groups' defaults apply, which for a model with a recipe on other data means other
settings than the ones its default run learned with (own data on the embedded model: lr 1e-5 instead of 1e-3).
`recipe_line` says which case a run is in, with the settings involved, so nothing changes silently.
Light on purpose (OmegaConf and files only): the CLI logs the line before torch is imported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

DOCS = "docs/configuration.md#recipes"
_ABSENT = object()


def config_dirs(sources: Sequence[Mapping[str, str]]) -> list[Any]:
    """The directories of a run's config sources (`hydra.runtime.config_sources`: the package's, `--config-dir`)."""
    dirs = []
    for source in sources:
        if source.get("schema") == "pkg" and source.get("path"):
            try:
                dirs.append(resources.files(source["path"]))
            except ModuleNotFoundError:
                continue
        elif source.get("schema") == "file" and source.get("path"):
            dirs.append(Path(source["path"]))
    return dirs


def find_recipe(name: str, dirs: Sequence[Any]) -> Any | None:
    """`recipe/<name>.yaml` in the first config directory that has it."""
    for directory in dirs:
        candidate = directory.joinpath("recipe").joinpath(f"{name}.yaml")
        if candidate.is_file():
            return candidate
    return None


def options(group: str, dirs: Sequence[Any]) -> list[str]:
    """The option names of a config group over every config directory."""
    names = set()
    for directory in dirs:
        folder = directory.joinpath(group)
        if folder.is_dir():
            names |= {item.name[:-5] for item in folder.iterdir() if item.name.endswith(".yaml")}
    return sorted(names)


def recipe_settings(file: Any) -> dict[str, Any]:
    """The recipe's settings as {dotted key: value} (it is `@package _global_`); keys that only follow another
    key (`${data.train.tasks}`) are left out."""
    node = OmegaConf.create(file.read_text())
    return dict(_leaves(node, ""))


def _leaves(node: DictConfig, prefix: str) -> Iterator[tuple[str, Any]]:
    for key in node:
        if not prefix and key == "defaults":
            continue
        path = f"{prefix}{key}"
        if OmegaConf.is_interpolation(node, key):
            continue
        value = node[key]
        if isinstance(value, DictConfig):
            yield from _leaves(value, f"{path}.")
        else:
            yield path, OmegaConf.to_container(value) if isinstance(value, ListConfig) else value


def _value(cfg: DictConfig, key: str) -> Any:
    """The run's value of `key`, resolved; `_ABSENT` when the run has no such key."""
    try:
        value = OmegaConf.select(cfg, key, default=_ABSENT)
    except Exception:  # an interpolation that cannot resolve outside a run: not a setting to compare
        return _ABSENT
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, ListConfig | DictConfig) else value


def show(value: Any) -> str:
    """A value as it is written on the command line: 0.001, 1e-05, true, [a, b]."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return "null" if value is None else str(value)


def recipe_line(
    cfg: DictConfig, choices: Mapping[str, str | None], dirs: Sequence[Any], only: Sequence[str] = ()
) -> str:
    """One line saying which recipe applies to this run, and which settings came from it or did not.

    `choices`: the run's group choices (`hydra.runtime.choices`); `only`: key prefixes the command reads (eval
    reads a recipe's `data` and `rollout.prompt` only).
    """
    model, data = choices.get("model"), choices.get("data")
    name = choices.get("recipe")
    wanted = f"{model}_{data}"
    if name is not None and (file := find_recipe(name, dirs)) is not None:
        settings = _relevant(recipe_settings(file), only)
        kept, changed = [], []
        for key, value in settings.items():
            current = _value(cfg, key)
            if current is _ABSENT or current == value:
                kept.append(f"{key}={show(value)}")
            else:
                changed.append(f"{key}={show(current)} (recipe {show(value)})")
        line = f"recipe {name} applies (recipe/{name}.yaml): {', '.join(kept) or 'nothing this command reads'}"
        return line + (f"; overridden: {', '.join(changed)}" if changed else "")
    off = "recipe switched off (~recipe)" if name is None else f"no recipe for model={model} data={data}"
    # The recipes this model has on other data: what the defaults replace here.
    others = [f"{model}_{d}" for d in options("data", dirs) if find_recipe(f"{model}_{d}", dirs)]
    if name is None and find_recipe(wanted, dirs):
        others = [wanted]
    if not others:
        return f"{off}: the config groups' defaults apply (recipes: recipe/<model>_<data>.yaml, see {DOCS})"
    other = others[0]
    differ = []
    for key, value in _relevant(recipe_settings(find_recipe(other, dirs)), only).items():
        current = _value(cfg, key)
        if current is not _ABSENT and current != value:
            differ.append(f"{key}={show(current)} (recipe {show(value)})")
    if not differ:
        return f"{off}: the defaults apply, the same as recipe {other}'s settings"
    return f"{off}: defaults apply where recipe {other} sets its own: {', '.join(differ)}; see {DOCS}"


def _relevant(settings: dict[str, Any], only: Sequence[str]) -> dict[str, Any]:
    if not only:
        return settings
    return {k: v for k, v in settings.items() if any(k == p or k.startswith(f"{p}.") for p in only)}


def run_recipe_line(cfg: DictConfig, only: Sequence[str] = ()) -> str:
    """`recipe_line` for the run Hydra composed (its choices and config sources)."""
    from hydra.core.hydra_config import HydraConfig

    runtime = HydraConfig.get().runtime
    return recipe_line(cfg, runtime.choices, config_dirs(runtime.config_sources), only)
