"""A user's mistake on the command line as one clear line, not a traceback.

Hydra is run with `HYDRA_FULL_ERROR=1` so its exceptions reach `user_error_line`, which turns the ones a user
causes (a misspelled override key, with "did you mean"; a config option that does not exist; a missing file or a
bad path the config checks report) into one line. Anything else is a bug and keeps its traceback; a user who sets
`HYDRA_FULL_ERROR=1` gets the full traceback of every error.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Sequence

# Our exceptions that describe a user's input (config, data, paths), by dotted name: no heavy import to test them.
USER_ERRORS = {
    "audio_thinker.config_checks.ConfigError",
    "audio_thinker.data.errors.DataError",
    "audio_thinker.models.sources.ModelSourceError",
    "audio_thinker.models.run_config.UnsafeConfigError",
    "audio_thinker.checkpoints.files.CheckpointReadError",
    "audio_thinker.rewards.base.RewardAbort",
    "audio_thinker.rollout.vllm_engine.ServerError",
    "audio_thinker.jobs.ObjectiveError",
    "builtins.FileNotFoundError",  # a path on the command line that is not there (ckpt_path=...)
    "builtins.IsADirectoryError",
    "builtins.NotADirectoryError",
}
# Config options that Hydra plugins bring: missing, they mean the plugin is not installed, not a typo.
PLUGIN_OPTIONS = {
    "hydra/sweeper/optuna": "hydra-optuna-sweeper",
    "hydra/launcher/joblib": "hydra-joblib-launcher",
    "hydra/launcher/submitit_local": "hydra-submitit-launcher",
    "hydra/launcher/submitit_slurm": "hydra-submitit-launcher",
}
# Set with HYDRA_FULL_ERROR by the CLI itself, so a re-launched worker can tell it from a user's own setting.
CLI_MARK = "AUDIO_THINKER_CLI_ERRORS"


def take_over_hydra_errors() -> bool:
    """Have Hydra raise its errors for `user_error_line` (True), unless the user asked for full tracebacks."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1" and os.environ.get(CLI_MARK) != "1":
        return False
    os.environ["HYDRA_FULL_ERROR"] = os.environ[CLI_MARK] = "1"
    return True


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _is_user_error(error: BaseException) -> bool:
    return any(f"{c.__module__}.{c.__qualname__}" in USER_ERRORS for c in type(error).__mro__)


def one_line(text: str) -> str:
    """The message on one line (Hydra and OmegaConf messages span several)."""
    return " ".join(str(text).split())


def flat_keys(node, prefix: str = "") -> list[str]:
    """Every dotted key of a config (unresolved), e.g. `rollout.group_size`."""
    from omegaconf import DictConfig, OmegaConf

    container = OmegaConf.to_container(node, resolve=False) if isinstance(node, DictConfig) else node
    keys = []
    for key, value in (container or {}).items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, dict):
            keys += flat_keys(value, f"{dotted}.")
    return keys


def did_you_mean(key: str, keys: Sequence[str]) -> str:
    """ " (did you mean 'rollout.group_size'?)" for the closest existing key, else ""."""
    leaf = key.rsplit(".", 1)[-1]
    close = sorted((k for k in keys if k.startswith(key)), key=len)[:1]  # a key cut short: rollout.gro
    close = close or difflib.get_close_matches(key, keys, n=1, cutoff=0.75)
    close = close or [k for k in keys if k.rsplit(".", 1)[-1] == leaf][:1]  # the same name in another node
    close = close or difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _override_key_error(message: str, keys: Sequence[str]) -> str | None:
    """A misspelled key in an override, with the closest key of the composed config."""
    match = re.search(r"Could not override '([^']+)'", message) or re.search(r"Key '([^']+)' is not in struct", message)
    if match is None:
        return None
    key = match.group(1)
    value = re.search(r"use \+\S+?=(\S*)", message)
    shown = f"{key}={value.group(1)}" if value else key
    return f"{shown}: no such key{did_you_mean(key, keys)}; `--cfg job` prints every key, and +{shown} adds a new one"


def user_error_line(error: BaseException, config_keys: Sequence[str] | None = None) -> str | None:
    """The one line to print for a user's mistake, or None for an error that is a bug (keep its traceback).

    `config_keys`: the keys of the composed config, for "did you mean" on a misspelled override key.
    """
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    if isinstance(error, MissingConfigException) and error.options:
        wanted = re.search(r"Could not find '([^']+)'", str(error))
        group, _, option = (wanted.group(1) if wanted else "?/?").rpartition("/")
        if plugin := PLUGIN_OPTIONS.get(f"{group}/{option}"):
            return f"{group}={option} comes with {plugin}, which is not installed: pip install 'audio-thinker[sweep]'"
        close = difflib.get_close_matches(option, error.options, n=1)
        hint = f" (did you mean {group}={close[0]}?)" if close else ""
        return f"{group}={option}: no such option{hint}; the options are {', '.join(sorted(error.options))}"
    if isinstance(error, ConfigCompositionException):
        return _override_key_error(str(error), config_keys or ()) or one_line(error)
    if isinstance(error, OverrideParseException | MissingConfigException):
        return one_line(error)
    for cause in _causes(error):
        if _is_user_error(cause):
            key = re.search(r"full_key: (\S+)", str(error))
            message = one_line(re.sub(r"\s*full_key: \S+\s*$", "", str(cause)))
            return message if key is None or message.startswith(key.group(1)) else f"{key.group(1)}: {message}"
    return None
