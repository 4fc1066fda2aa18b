"""`audio-thinker <command> [hydra overrides]`: the console entry point."""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import re
import sys
from importlib import resources
from pathlib import Path

import hydra
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from audio_thinker import cli_completion, cli_errors, jobs
from audio_thinker.recipes import run_recipe_line
from audio_thinker.run_names import register_resolver, remember_command_line

log = logging.getLogger(__name__)

USAGE = """usage: audio-thinker <command> [overrides ...]

commands:
  train       run GRPO training (Hydra overrides, e.g. reward=cesar trainer.max_steps=10; -m for sweeps)
  eval        evaluate a model: accuracy by task/difficulty and the test-time scaling curve
  make-data   write the synthetic audio tasks as WAV files + JSONL manifests (--help for options)
  data check  validate a dataset manifest and report every bad row (--help for options)
  export      save a checkpoint's LoRA adapter (or model) + processor; --merge folds it into the base
  rollout-server  the vLLM rollout server: --setup builds its environment; start, stop, health
  build-models    rebuild the embedded tiny models (package files), checking each before it is written

`audio-thinker <command> --help` lists a command's most used settings; `audio-thinker --version`.
With no overrides, `train` runs the embedded default: a tiny Qwen2-Audio on synthetic audio, on the CPU.
The configs ship in the package (pkg://audio_thinker.configs); add a directory of your own with --config-dir DIR
(e.g. DIR/reward/mine.yaml, then reward=mine).
"""


# The configs ship inside the package: a wheel, `pip install .` or a source checkout all find them here. A user adds
# a directory of their own with `--config-dir DIR` or `hydra.searchpath=[file://DIR]` (searched after ours).
CONFIG_MODULE = "audio_thinker.configs"
CONFIG_PATH = f"pkg://{CONFIG_MODULE}"


def config_path() -> str:
    """Hydra's search path entry for the packaged configs, after checking that the install has them."""
    try:
        packaged = resources.files(CONFIG_MODULE).joinpath("train.yaml").is_file()
    except ModuleNotFoundError:
        packaged = False
    if not packaged:
        raise SystemExit(
            f"audio-thinker: the package has no configs ({CONFIG_MODULE} lacks train.yaml): reinstall it "
            "(pip install audio-thinker, or pip install -e . from a checkout)"
        )
    return CONFIG_PATH


def compose_run(output_dir: str | Path, overrides: list[str] | tuple[str, ...] = (), name: str = "train") -> DictConfig:
    """The config `audio-thinker <name>` would run with `overrides`, composed outside a Hydra run (tools, tests,
    notebooks): outputs under `output_dir`, and `${hydra:...}` interpolations resolve as in a real run."""
    register_resolver()
    GlobalHydra.instance().clear()
    config_path()  # the same check as the CLI's
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose(name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


def _train(cfg: DictConfig) -> float | None:
    """Train; in a multirun, return the run's objective (what a Hydra sweeper such as Optuna optimises)."""
    hydra_cfg = HydraConfig.get()
    _say_which_recipe(cfg)
    ranked = hydra_cfg.mode == RunMode.MULTIRUN and jobs.ranks_jobs(hydra_cfg.sweeper)
    if ranked:
        jobs.check_objective(cfg)  # before the model loads
    shared_machine = hydra_cfg.launcher.get("_target_") in jobs.SHARED_MACHINE_LAUNCHERS
    with jobs.gpu_of_its_own() if shared_machine else contextlib.nullcontext():  # before anything touches CUDA
        from audio_thinker.train import train  # heavy imports only once a command runs

        metrics = train(cfg)
    if not ranked:  # a single run, or Hydra's basic sweeper: nobody reads it, so no run fails over it
        return metrics.get(cfg.objective.metric)
    return jobs.objective_value(metrics, cfg.objective.metric)


def _say_which_recipe(cfg: DictConfig, only: tuple[str, ...] = ()) -> None:
    """Log, once per run (rank 0), which recipe's settings apply: the first line, before torch's seconds of import."""
    if int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0:
        log.info(run_recipe_line(cfg, only))


def _eval(cfg: DictConfig) -> None:
    _say_which_recipe(cfg, only=("data.train", "data.val", "rollout.prompt"))  # what eval reads of a recipe
    from audio_thinker.eval.run import evaluate

    evaluate(cfg)


COMMANDS = {"train": ("train", _train), "eval": ("eval", _eval)}


def _make_data(argv: list[str]) -> int:
    from audio_thinker.data.make_data import make_data_main

    return make_data_main(argv)


def _data(argv: list[str]) -> int:
    from audio_thinker.data.validate import data_check_main

    if not argv or argv[0] != "check":
        print("usage: audio-thinker data check <manifest> [options]", file=sys.stderr)
        return 2
    return data_check_main(argv[1:])


COMMAND_ENV = "AUDIO_THINKER_COMMAND"


def _export(argv: list[str]) -> int:
    from audio_thinker.models.hf_export import export_main

    return export_main(argv)


def _build_models(argv: list[str]) -> int:
    from audio_thinker.embedded.build import build_models_main

    return build_models_main(argv)


def _rollout_server(argv: list[str]) -> int:
    from audio_thinker.rollout.server import rollout_server_main

    return rollout_server_main(argv)


# Commands with their own argparse options (not Hydra runs).
PLAIN_COMMANDS = {
    "make-data": _make_data,
    "data": _data,
    "export": _export,
    "rollout-server": _rollout_server,
    "build-models": _build_models,
}


def version() -> str:
    """The installed package's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("audio-thinker")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def main(argv: list[str] | None = None) -> None:
    """Dispatch to a command; everything after the command name goes to Hydra (or the command's parser)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PLAIN_COMMANDS:
        raise SystemExit(PLAIN_COMMANDS[argv[0]](argv[1:]))
    relaunched = "LOCAL_RANK" in os.environ and os.environ.get(COMMAND_ENV) in COMMANDS
    if argv and argv[0] not in COMMANDS and relaunched:
        argv = [os.environ[COMMAND_ENV], *argv]  # a DDP worker re-launched by Lightning without the command word
    if argv and argv[0] == "--version":
        print(f"audio-thinker {version()}")
        raise SystemExit(0)
    if argv and argv[0] in cli_completion.FLAGS:  # Hydra's completion script asks `audio-thinker -sc query=...`
        command = cli_completion.completion_target(argv, list(COMMANDS), [*COMMANDS, *PLAIN_COMMANDS])
        if command is None:
            raise SystemExit(0)
        argv = [command, *argv]
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0)
    if argv[0] not in COMMANDS:
        close = difflib.get_close_matches(argv[0], [*COMMANDS, *PLAIN_COMMANDS], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        print(f"audio-thinker: unknown command {argv[0]!r}{hint}\n\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    if "--help" in argv[1:] or "-h" in argv[1:]:  # ours, short; Hydra's own is --hydra-help
        from audio_thinker.cli_help import short_help

        print(short_help(argv[0], argv[1:]))
        raise SystemExit(0)
    config_name, run = COMMANDS[argv[0]]
    # Hydra parses sys.argv[1:] as overrides; Lightning re-launches DDP workers as sys.argv[0] + sys.argv[1:],
    # so the command word travels in the environment instead.
    os.environ[COMMAND_ENV] = argv[0]
    sys.argv = [sys.argv[0], *argv[1:]]
    register_resolver()  # `${run_folder:...}` names sweep run folders
    remember_command_line(argv[1:])  # ... in job processes too, whose own sys.argv is submitit's
    ours = cli_errors.take_over_hydra_errors()  # Hydra raises; a user's mistake is then printed as one line
    try:
        hydra.main(config_path=config_path(), config_name=config_name, version_base="1.3")(run)()
    except Exception as error:
        keys = _config_keys(config_name, argv[1:]) if isinstance(error, ConfigCompositionException) else []
        line = cli_errors.user_error_line(error, keys) if ours else None
        if line is None:
            raise
        print(f"audio-thinker {argv[0]}: error: {line}", file=sys.stderr)
        raise SystemExit(1) from None


def _config_keys(config_name: str, overrides: list[str]) -> list[str]:
    """The keys of the config the overrides' group choices compose (for "did you mean"), or [] if none composes."""
    choices = [o for o in overrides if re.fullmatch(r"[\w/]+=[^,]*", o) and "." not in o.split("=")[0]]
    for attempt in (choices, []):
        GlobalHydra.instance().clear()
        try:
            with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
                return cli_errors.flat_keys(compose(config_name, overrides=attempt))
        except Exception:  # noqa: BLE001 (no suggestion is better than a second error)
            continue
    return []


if __name__ == "__main__":
    main()
