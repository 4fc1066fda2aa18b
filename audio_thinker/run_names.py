"""Sweep run folders named after what the sweep varies: `3_loss.beta=0.04,reward=cesar` instead of `3`.

Hydra's `override_dirname` lists every override of a job, the fixed ones too, and soon passes the 255-character
limit of a file name. The keys a sweep varies are the ones the command line gives as sweeps (`a=1,2`,
`range(...)`, `choice(...)`), so `swept_name` keeps only those; when none can be told (a sweeper that takes its
search space from the config, like Optuna), it falls back to every override. Names stay under `MAX_NAME` characters
(a hash of the full name keeps them unique when cut).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

MAX_NAME = 120
# Characters a folder name must not carry: a path separator would nest folders.
_UNSAFE = str.maketrans({"/": "_", "\\": "_", ":": "_"})


def swept_keys(argv: Sequence[str]) -> set[str]:
    """Keys the command line sweeps over (Hydra's own parser decides what is a sweep)."""
    candidates = [arg for arg in argv if "=" in arg and not arg.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(candidates)
    except Exception:  # an argument Hydra itself would reject: no sweep keys to name folders after
        return set()
    return {o.get_key_element() for o in overrides if o.is_sweep_override()}


def swept_name(job_overrides: Sequence[str], argv: Sequence[str] | None = None) -> str:
    """The job's overrides of swept keys as `k=v,k=v` (all of them if no swept key is known), made a safe name."""
    keys = swept_keys(sys.argv[1:] if argv is None else argv)
    chosen = [o for o in job_overrides if o.split("=", 1)[0].lstrip("+~") in keys] or list(job_overrides)
    name = ",".join(sorted(chosen)).translate(_UNSAFE)
    if len(name) > MAX_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME - 9]}-{digest}"
    return name


def register_resolver() -> None:
    """`${swept_name:${hydra:overrides.task}}` for `configs/hydra/default.yaml` (idempotent)."""
    if not OmegaConf.has_resolver("swept_name"):
        OmegaConf.register_new_resolver("swept_name", lambda overrides: swept_name(list(overrides)))
