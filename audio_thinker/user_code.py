"""Make the user's own modules (reward functions, callbacks) importable by a `_target_`.

The console script's `sys.path` starts with its own `bin/` folder, not the directory the user runs in, so a
`my_rewards.py` beside the run would not import; `make_importable` puts that directory, and any folders a config
names, first on `sys.path`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path


def user_directory() -> Path:
    """The directory the command was started in: the working directory, or Hydra's original one when
    `hydra.job.chdir=true` moved the job into its output folder."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized() and HydraConfig.get().job.get("chdir"):
        return Path(HydraConfig.get().runtime.cwd)
    return Path(os.getcwd())


def make_importable(paths: Iterable[str | os.PathLike] = (), key: str = "paths") -> list[str]:
    """Put the user's directory and `paths` (relative to it) first on `sys.path`; return what was added.

    A path that is not a directory is an error naming `key`, the path as given and where it resolved to.
    """
    base = user_directory()
    folders = [base]
    for path in paths:
        folder = (base / Path(path).expanduser()).resolve()
        if not folder.is_dir():
            raise ValueError(
                f"{key}: {str(path)!r} is not a directory (resolved to {folder}); list folders that hold "
                "your reward modules"
            )
        folders.append(folder)
    added = []
    for folder in reversed(folders):  # the last inserted ends up first: keep the user's directory in front
        entry = str(folder)
        if entry not in sys.path:
            sys.path.insert(0, entry)
            added.append(entry)
    return added


def locate(path: str):
    """The object a dotted `_target_` names (`my_rewards.brevity`, `pkg.mod.Class.method`); an ImportError saying
    which part failed (Hydra's `get_object` also logs a three-line error first)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name is not None and not (module_name + ".").startswith(err.name + "."):
                raise  # the module exists but imports something missing: say so, not "no module"
            continue
        for attribute in parts[cut:]:
            if not hasattr(obj, attribute):
                raise ImportError(f"module {module_name!r} has no {'.'.join(parts[cut:])!r}")
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(f"no module named {parts[0]!r}")
