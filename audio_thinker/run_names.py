"""Sweep run folders named after what the sweep varies: `3_loss.beta=0.04,reward=cesar` instead of `3`.

Hydra's `override_dirname` lists every override of a job, the fixed ones too, and soon passes the 255-character
limit of a file name. A job's overrides that the command line fixes (`trainer.max_steps=2`) are the same in every
run, so `run_folder` leaves them out and keeps what varies: the keys swept on the command line (`a=1,2`,
`range(...)`, `interval(...)`) and the ones a sweeper adds from its config (Optuna's search space). Names stay
under `MAX_NAME` characters (a hash of the full name keeps them unique when cut); a job with nothing varying is
just its number.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

MAX_NAME = 120
# The sweep's command line, for jobs that run in another process (submitit, Slurm) where sys.argv is the launcher's.
ARGV_ENV = "AUDIO_THINKER_SWEEP_ARGV"
# Characters a folder name must not carry: a path separator would nest folders.
_UNSAFE = str.maketrans({"/": "_", "\\": "_", ":": "_"})


def fixed_keys(argv: Sequence[str]) -> set[str]:
    """Keys the command line sets to one value (Hydra's own parser tells a sweep from a plain override)."""
    # `~key` deletes with no value; launchers that pickle the job (joblib, submitit) pass it on as `~key=null`.
    candidates = [arg for arg in argv if ("=" in arg or arg.startswith("~")) and not arg.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(candidates)
    except Exception:  # an argument Hydra itself would reject: nothing is known to be fixed
        return set()
    return {o.get_key_element().lstrip("+~") for o in overrides if not o.is_sweep_override()}


def command_line() -> list[str]:
    """The overrides the user typed: what the CLI left in `ARGV_ENV`, else this process's own arguments."""
    saved = os.environ.get(ARGV_ENV)
    return json.loads(saved) if saved else sys.argv[1:]


def remember_command_line(argv: Sequence[str]) -> None:
    """Leave the overrides in the environment, which a launcher's job processes inherit."""
    os.environ[ARGV_ENV] = json.dumps(list(argv))


def run_folder(job_number: int, job_overrides: Sequence[str], argv: Sequence[str] | None = None) -> str:
    """`<number>_<varying overrides>` (`k=v,k=v`, sorted, made a safe name), or `<number>` when nothing varies."""
    fixed = fixed_keys(command_line() if argv is None else argv)
    varying = sorted(o for o in job_overrides if o.split("=", 1)[0].lstrip("+~") not in fixed)
    name = ",".join(varying).translate(_UNSAFE)
    if len(name) > MAX_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME - 9]}-{digest}"
    return f"{job_number}_{name}" if name else str(job_number)


def register_resolver() -> None:
    """`${run_folder:${hydra.job.num},${hydra.overrides.task}}` for `configs/hydra/default.yaml` (idempotent)."""
    if not OmegaConf.has_resolver("run_folder"):
        OmegaConf.register_new_resolver(
            "run_folder", lambda number, overrides: run_folder(int(number), list(overrides))
        )
