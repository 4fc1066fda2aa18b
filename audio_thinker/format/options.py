"""Option lettering: how multiple-choice options are put in a prompt and how a letter maps back to one."""

from __future__ import annotations

from collections.abc import Sequence

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def option_letter(index: int) -> str:
    """'A' for option 0, 'B' for option 1, ... (at most 26 options)."""
    if not 0 <= index < len(LETTERS):
        raise ValueError(f"option index {index} has no letter: at most {len(LETTERS)} options can be lettered")
    return LETTERS[index]


def is_option_letter(text: str) -> bool:
    """True for one letter A-Z, either case ('ﬆ', whose upper case is 'ST', is not one)."""
    return text.upper() in tuple(LETTERS)


def letter_index(letter: str) -> int:
    """0 for 'A' or 'a', 1 for 'B', ..."""
    if not is_option_letter(letter):
        raise ValueError(f"not an option letter: {letter!r}")
    return LETTERS.index(letter.upper())


def lettered_options(choices: Sequence[str]) -> list[str]:
    """['A. first', 'B. second']: each option after its letter."""
    return [f"{option_letter(i)}. {choice}" for i, choice in enumerate(choices)]


def options_block(choices: Sequence[str], lettered: bool = True) -> str:
    """'A. first\\nB. second' (lettered) or '- first\\n- second' (not lettered), one option a line."""
    if lettered:
        return "\n".join(lettered_options(choices))
    return "\n".join(f"- {choice}" for choice in choices)
