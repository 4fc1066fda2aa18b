"""`audio-thinker train --help` and `eval --help`: the settings people change most, with this config's values.

Hydra's own help (221 lines of framework options) stays one flag away, as `--hydra-help`; `--cfg job` prints every
key. Values come from the config composed with the overrides on the command line, so
`audio-thinker train reward=cesar --help` shows CESAR's.
"""

from __future__ import annotations

import re
from importlib import resources

# (group, what it picks), in the order a new user meets them.
GROUPS = {
    "train": [
        ("model", "the policy (model.path=<hub id or folder> for any other)"),
        ("data", "the dataset (manifest: your JSONL; hf_dataset: a datasets folder or Hub id)"),
        ("reward", "the reward suite (reward.terms.<name>.weight=..., +reward.terms.<name>._target_=my.fn)"),
        ("prompt", "the prompt template (think, adaptive, direct)"),
        ("loss", "the loss (grpo, dapo, dr_grpo, gspo, bnpo)"),
        ("quant", "LoRA / QLoRA"),
        ("logger", "where scalars go ([tensorboard,csv] for several)"),
        ("experiment", "a paper's settings, applied last"),
    ],
    "eval": [
        ("model", "the model (eval.ckpt_path=<checkpoint> for a trained one)"),
        ("data", "the dataset (data=manifest data.val.path=<file>)"),
        ("prompt", "the prompt template"),
    ],
}
# (key, what it sets).
KEYS = {
    "train": [
        ("trainer.max_steps", "optimizer steps"),
        ("optimizer.lr", "learning rate"),
        ("data.batch_size", "prompts per micro-batch"),
        ("rollout.group_size", "G: completions sampled per prompt"),
        ("rollout.max_new_tokens", "completion length limit"),
        ("rollout.temperature", "sampling temperature"),
        ("loss.beta", "KL weight (0: no reference model)"),
        ("trainer.accelerator", "cpu, gpu or auto"),
        ("seed", "the run's seed"),
        ("ckpt_path", "resume from a checkpoint, or last (this run's newest)"),
        ("hydra.run.dir", "the output folder"),
    ],
    "eval": [
        ("eval.ckpt_path", "a training checkpoint to evaluate"),
        ("eval.adapter", "a PEFT adapter folder on model.path"),
        ("eval.budgets", "reasoning budgets of the scaling curve ([] for none)"),
        ("eval.max_examples", "a stratified sample of N (null: all)"),
        ("eval.batch_size", "examples per batch"),
        ("hydra.run.dir", "the output folder"),
    ],
}
SUMMARY = {
    "train": "Run one GRPO training (a sweep with -m: every combination of comma-separated values).",
    "eval": "Evaluate a model: accuracy by task and difficulty, and the test-time scaling curve.",
}


def _options(group: str) -> list[str]:
    """The packaged option names of a config group (its YAML files)."""
    folder = resources.files("audio_thinker.configs").joinpath(group)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")) if folder.is_dir() else []


def _composed(config_name: str, overrides: list[str]):
    """The config as the command would compose it, or without the overrides when they do not compose."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    for attempt in (overrides, []):
        GlobalHydra.instance().clear()
        try:
            with initialize_config_module(config_module="audio_thinker.configs", version_base="1.3"):
                return compose(config_name, overrides=attempt, return_hydra_config=True)
        except Exception:  # noqa: BLE001 (a bad override shows the defaults; running the command reports it)
            continue
    return None


def _value(cfg, key: str) -> str:
    """The key's value as the run would see it; a `${now:...}` folder shows `<date>` in place of the time."""
    from omegaconf import OmegaConf

    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    raw = node._get_node(leaf)._value() if node is not None and leaf in node else "?"
    if isinstance(raw, str) and "${now:" in raw:
        return re.sub(r"\$\{now:[^}]*\}", "<date>", raw).replace("${task_name}", str(cfg.get("task_name")))
    try:
        value = OmegaConf.select(cfg, key, default="?", throw_on_resolution_failure=True)
    except Exception:  # noqa: BLE001 (an interpolation only a real run resolves)
        return str(raw)
    return "null" if value is None else str(value)


def short_help(command: str, overrides: list[str]) -> str:
    """The help text of `audio-thinker <command>` (train or eval)."""
    cfg = _composed(command, [o for o in overrides if not o.startswith("-")])
    choices = dict(cfg.hydra.runtime.choices) if cfg is not None else {}
    lines = [
        f"usage: audio-thinker {command} [-m] [group=option ...] [key=value ...]",
        "",
        SUMMARY[command],
        "",
        "config groups (group=option; current choice, then the options):",
    ]
    for group, what in GROUPS[command]:
        choice = "null" if choices.get(group) is None else str(choices.get(group))
        lines.append(f"  {group:<11}{choice:<20}  {what}")
        lines.append(f"  {'':<33}options: {', '.join(_options(group))}")
    lines += ["", "settings (key=value; value in this config):"]
    for key, what in KEYS[command]:
        shown = f"{key}={_value(cfg, key) if cfg is not None else '?'}"
        lines.append(f"  {shown:<44}  {what}")
    lines += [
        "",
        "more:",
        f"  audio-thinker {command} [overrides] --cfg job".ljust(46) + "  every key and value of that config",
        f"  audio-thinker {command} --hydra-help".ljust(46) + "  Hydra's own options (-m sweeps, --config-dir, ...)",
        '  eval "$(audio-thinker -sc install=bash)"'.ljust(46) + "  tab completion of keys and options in bash",
        "  audio-thinker --help".ljust(46) + "  the other commands",
    ]
    return "\n".join(lines)
