"""Pin what `pip install -e ".[dev]"` installs, and show what differs from the pins.

    python tools/constraints.py freeze > constraints.txt    # the installed version of every package .[dev] pulls
    python tools/constraints.py diff constraints.txt        # installed versions that differ from the pins

`freeze` follows the requirements of audio-thinker[dev] through this environment's package metadata, so a tool
installed beside them (trl of the bench extra, ipython) stays out. Run it where the suite passed.
"""

from __future__ import annotations

import argparse
import platform
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "audio-thinker"
HEADER = """\
# The exact versions CI installs and tests: `pip install -c constraints.txt -e ".[dev]"`.
# Written by `python tools/constraints.py freeze > constraints.txt` (Python {python}, {machine}); packages that
# only another Python or platform needs are not pinned. `bash tools/check_latest.sh` shows what newer versions do.
"""


def requirements_closure(project: str = PROJECT, extras: tuple[str, ...] = ("dev",)) -> dict[str, str]:
    """Canonical name -> installed version of every distribution `project[extras]` requires, transitively."""
    versions: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(project, frozenset(extras))]
    while todo:
        name, wanted = todo.pop()
        if (canonicalize_name(name), wanted) in seen:
            continue
        seen.add((canonicalize_name(name), wanted))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{name} is required but not installed: pip install -e '.[{','.join(extras)}]'") from None
        if canonicalize_name(name) != canonicalize_name(project):
            versions[canonicalize_name(dist.metadata["Name"])] = dist.version
        environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return versions


def read_pins(path: str | Path) -> dict[str, str]:
    """Canonical name -> version of each `name==version` line of a constraints file."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, exact, version = line.partition("==")
            if not exact or not version.strip():
                raise ValueError(f"{path}: {line!r} is not name==version")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def differences(pins: dict[str, str], installed: dict[str, str]) -> list[str]:
    """One line per package whose installed version is not its pin: changed, new (unpinned) or gone."""
    lines = []
    for name in sorted(pins.keys() | installed.keys()):
        pinned, now = pins.get(name), installed.get(name)
        if pinned != now:
            lines.append(f"{name}: {pinned or '(not pinned)'} -> {now or '(not installed)'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """`freeze` prints the constraints; `diff FILE` prints the differences and returns 1 when there are any."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("freeze", help="print name==version for every package .[dev] pulls, as installed here")
    diff = commands.add_parser("diff", help="print the packages whose installed version differs from FILE")
    diff.add_argument("file", help="a constraints file (constraints.txt)")
    args = parser.parse_args(argv)
    installed = requirements_closure()
    if args.command == "freeze":
        print(HEADER.format(python=platform.python_version(), machine=f"{platform.system()} {platform.machine()}"))
        print("\n".join(f"{name}=={version}" for name, version in sorted(installed.items())))
        return 0
    lines = differences(read_pins(args.file), installed)
    print("\n".join(lines) if lines else f"every installed version is the one in {args.file}")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
