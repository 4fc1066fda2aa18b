"""Shell completion for `audio-thinker`: Hydra's, with our command word in front.

`eval "$(audio-thinker -sc install=bash)"` installs Hydra's completion script (train's Hydra app writes it). On every
<TAB> that script runs `audio-thinker -sc query=bash` with the line typed so far in `COMP_LINE`. Hydra completes
overrides only, so the command word is answered here (`audio-thinker tr<TAB>` -> `train`) and, for `train` and
`eval`, taken out of `COMP_LINE` before that command's Hydra app completes the rest
(`audio-thinker train rollout.gro<TAB>` -> `rollout.group_size=`). Other commands complete file names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

FLAGS = ("-sc", "--shell-completion")


def completion_target(argv: Sequence[str], hydra_commands: Sequence[str], all_commands: Sequence[str]) -> str | None:
    """The command whose Hydra app answers `audio-thinker -sc <action>=<shell>` (COMP_LINE rewritten for it), or
    None when the answer was printed here: the command word itself, or a command that completes file names."""
    action = argv[1] if len(argv) > 1 else ""
    if not action.startswith("query="):
        return "train"  # install / uninstall: the script is the same for every command
    shell = action.split("=", 1)[1]
    line = os.environ.get("COMP_LINE", "")
    program = re.match(r"\s*\S+", line)
    rest = line[program.end() :] if program else ""
    words, new_word = rest.split(), rest.endswith(" ") or not rest
    if not words or (len(words) == 1 and not new_word):  # completing the command word
        typed = words[0] if words else ""
        matches = [command for command in all_commands if command.startswith(typed)]
        print(("\n" if shell == "fish" else " ").join(matches))
        return None
    command = words[0]
    if command not in hydra_commands:
        print("")  # nothing: the shell falls back to file names
        return None
    after = rest[rest.index(command) + len(command) :]
    os.environ["COMP_LINE"] = f"{program.group(0).strip()}{after}"
    return command
