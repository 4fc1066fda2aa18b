"""A captured standard error that says it is a terminal, so progress bars (tqdm `disable=None`) draw into it."""

from __future__ import annotations

import io


class Terminal(io.StringIO):
    """A `StringIO` whose `isatty()` is true."""

    def isatty(self) -> bool:
        return True
