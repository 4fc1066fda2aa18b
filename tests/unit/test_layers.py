"""The package's rooms are built in floors (docs/how-a-step-works.md, "The code's rooms"): no import runs up.

Every `import` of every module is read from its source (`ast`), wherever it sits: at the top, inside a function,
or under `if TYPE_CHECKING:` (a type-only import is still an arrow a reader follows). A module may import from
its own room and from rooms on a lower floor; rooms on one floor are siblings and do not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "audio_thinker"

# Floor by floor, from the ground up. A room is a subpackage (`format/`) or a top-level module (`example`).
FLOORS: list[tuple[str, ...]] = [
    # 0: the answer format, and helpers that import nothing of the package, so any room may use them:
    #    run_names (sweep folder names from overrides), recipes (which recipe a run's settings came from) and
    #    user_code (the user's own `_target_`s) serve the CLI, train, eval and the reward suite; loggers wraps
    #    Lightning's loggers; run_logs reads back what they wrote (eval's sweep summaries).
    ("format/", "redaction", "distributed", "user_code", "loggers", "run_logs", "run_names", "recipes", "configs/"),
    # 1: the rest of the ground floor: the example record (it letters options through format/), the pure-torch
    #    loss, checkpoint files.
    ("example", "losses/", "checkpoints/"),
    # 2: models (loading, Policy, families). jobs (a job's launcher: threads, GPU lock, requeue resume) sits here:
    #    it reads only checkpoint files, and `audio-thinker eval` sets its threads through it as train does.
    ("models/", "jobs"),
    # 3: data
    ("data/",),
    # 4: what reads data: the embedded demo models' builders, rewards, rollout sampling
    ("embedded/", "rewards/", "rollout/"),
    # 5: config checks build the cheap parts (loss, reward suite, callbacks) before the model loads; eval and
    #    train both run them.
    ("config_checks",),
    # 6: evaluation (budget forcing, metrics, the scaling curve, validation)
    ("eval/",),
    # 7: the LightningModule, which validates through eval/
    ("module",),
    # 8: the Lightning callbacks
    ("callbacks/",),
    # 9: composing a run
    ("train",),
    # 10: the command line (cli.py and its help, errors and completion)
    ("cli",),
]
FLOOR = {room: floor for floor, rooms in enumerate(FLOORS) for room in rooms}


def room_of(module: str) -> str:
    """`audio_thinker.rewards.judge.terms` -> 'rewards/'; `audio_thinker.cli_help` -> 'cli'."""
    parts = module.split(".")
    if len(parts) < 2:
        raise ValueError(f"{module} is the package itself, not a room")
    name = parts[1]
    if (PACKAGE / name).is_dir():
        return f"{name}/"
    return "cli" if name.startswith("cli") else name


def module_name(path: Path) -> str:
    """The dotted name of a source file of the package."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) for every import of the package's own modules in `source` (the code of `module`): at the
    top, inside functions and under `if TYPE_CHECKING:` alike."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "audio_thinker":  # `from audio_thinker import rewards`: the room is the name imported
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return sorted((line, name) for line, name in found if name.startswith("audio_thinker."))


def sources() -> list[Path]:
    """Every module of the package but its empty `__init__.py`."""
    return sorted(path for path in PACKAGE.rglob("*.py") if path != PACKAGE / "__init__.py")


def test_every_room_has_a_floor():
    rooms = {room_of(module_name(path)) for path in sources()}
    assert rooms - set(FLOOR) == set(), "a new room: give it a floor in FLOORS (and in the docs' map)"


def test_imports_are_read_wherever_they_sit():
    code = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from audio_thinker.module import GRPOModule\n"
        "def f():\n    import audio_thinker.callbacks.reward\n"
        "from .batch import Rollout\n"
        "from audio_thinker import train\n"
        "import torch\n"
    )
    assert imported_modules(code, "audio_thinker.rollout.probe") == [
        (3, "audio_thinker.module"),
        (5, "audio_thinker.callbacks.reward"),
        (6, "audio_thinker.rollout.batch"),
        (7, "audio_thinker.train"),
    ]


def test_no_import_runs_up():
    upward = []
    for path in sources():
        here, name = room_of(module_name(path)), module_name(path)
        for line, target in imported_modules(path.read_text(encoding="utf-8"), name, path.name == "__init__.py"):
            there = room_of(target)
            if there != here and FLOOR[there] >= FLOOR[here]:
                upward.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line}: {here} (floor {FLOOR[here]}) imports "
                    f"{target} ({there}, floor {FLOOR[there]})"
                )
    assert not upward, "imports that run up (or across) the floors:\n" + "\n".join(upward)
