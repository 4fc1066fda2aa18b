"""Prompt templates: an example (question + options) becomes chat messages in the HF multimodal format.

Three ready templates, one per reasoning mode (also in `configs/prompt/*.yaml`):
- `THINK` (CESAR): reason inside <think></think>, then answer inside <answer></answer>.
- `ADAPTIVE` (Audio-Thinker): the model decides whether the question needs reasoning.
- `DIRECT`: only <answer></answer>.

Rephrasing (CESAR trains with it): with `rephrase=True` the question is replaced by an equivalent wording
chosen by (seed, example id). Rules are answer-invariant by construction: whole-question synonyms for known
questions, else a neutral lead-in ("Based on what you hear, ...") around the unchanged question. The options
and the gold answer are never touched.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal, Protocol

from audio_thinker.format.options import options_block

Mode = Literal["think", "adaptive", "direct"]
MODES: tuple[str, ...] = ("think", "adaptive", "direct")


class Question(Protocol):
    """What a template reads of an example. `audio_thinker.example.AudioQAExample` is one; it is described here,
    not imported, because the example record stands on format/ (it letters its answer with `options`)."""

    id: str
    question: str
    choices: list[str] | None
    meta: dict


THINK_INSTRUCTION = (
    "First think about the question step by step inside <think> </think>, using what you hear in the audio. "
    "Then give the final answer inside <answer> </answer>."
)
ADAPTIVE_INSTRUCTION = (
    "Decide whether this question needs reasoning. If it does, reason step by step inside <think> </think> and "
    "then give the final answer inside <answer> </answer>. If it is simple, skip the reasoning and reply with "
    "only <answer> </answer>."
)
DIRECT_INSTRUCTION = "Reply with only the final answer inside <answer> </answer>, without any explanation."

# Groups of whole-question wordings with the same meaning; any member may replace any other.
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    (
        "Which of the two tones is higher in pitch?",
        "Of the two tones, which one has the higher pitch?",
        "Which tone sounds higher, the first or the second?",
    ),
    (
        "Which of the two tones is louder?",
        "Of the two tones, which one is louder?",
        "Which tone is played at the higher volume, the first or the second?",
    ),
    (
        "Which of the two tones is longer?",
        "Of the two tones, which one lasts longer?",
        "Which tone has the longer duration, the first or the second?",
    ),
    ("How many beeps do you hear?", "How many beeps are there in the audio?", "Count the beeps: how many are there?"),
    (
        "How does the pitch move across the three tones?",
        "Across the three tones, how does the pitch change?",
        "What is the pitch contour of the three tones?",
    ),
    (
        "Is the rhythm of the clicks regular or irregular?",
        "Are the clicks evenly spaced in time (regular) or not (irregular)?",
        "Is the timing of the clicks regular or irregular?",
    ),
)
# Lead-ins that leave the question itself unchanged; "{q}" is the question (first letter lowered when safe).
LEAD_INS: tuple[str, ...] = (
    "{Q}",
    "Listen to the audio. {Q}",
    "Based on what you hear, {q}",
    "Answer this question about the audio: {Q}",
)
# Only these first words are lowered after a lead-in; a name or acronym keeps its capital.
_LOWERABLE = {"which", "what", "how", "is", "are", "does", "do", "did", "who", "where", "when", "why", "can", "in"}


def _key(question: str) -> str:
    """Case- and space-insensitive form used to look a question up in `SYNONYM_GROUPS`."""
    return " ".join(question.split()).casefold()


_GROUP_OF = {_key(q): group for group in SYNONYM_GROUPS for q in group}


def rephrasings(question: str) -> tuple[str, ...]:
    """Every answer-invariant wording of `question`, the original first."""
    group = _GROUP_OF.get(_key(question))
    if group is not None:
        return (question, *(q for q in group if _key(q) != _key(question)))
    first, _, rest = question.partition(" ")
    lowered = first.lower() + " " + rest if first.lower() in _LOWERABLE else question
    return tuple(dict.fromkeys(lead.format(Q=question, q=lowered) for lead in LEAD_INS))


def rephrase_question(question: str, seed: int, key: str = "") -> str:
    """One wording of `question`, a pure function of (question, seed, key) (crc32: stable across processes)."""
    options = rephrasings(question)
    return options[zlib.crc32(f"{seed}\x00{key}\x00{question}".encode()) % len(options)]


@dataclass(frozen=True)
class PromptTemplate:
    """How an example is put to the model: optional system turn, question + options + `instruction`.

    Attributes:
        instruction: the output-format instruction appended after the options ("" appends nothing).
        mode: "think", "adaptive" or "direct": what the instruction asks for (rewards and logs read it).
        system: the system message, or None for the example's own (`meta["prompt_system"]`, from a TRL or
            ms-SWIFT record's system turn), else the model's default.
        rephrase: replace the question by an equivalent wording chosen by (`seed`, example id).
        seed: the rephrasing seed.
        letter_options: list the options as "A. …", "B. …" (True) or as "- …" lines; answer matching accepts a
            bare letter only when they are lettered.
    """

    instruction: str = THINK_INSTRUCTION
    mode: Mode = "think"
    system: str | None = None
    rephrase: bool = False
    seed: int = 0
    letter_options: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"prompt mode must be one of {list(MODES)}, got {self.mode!r}")

    def question(self, example: Question) -> str:
        """The question as asked (rephrased when `rephrase` is on)."""
        return rephrase_question(example.question, self.seed, example.id) if self.rephrase else example.question

    def user_text(self, example: Question) -> str:
        """Question, options block (multiple choice only) and instruction, one per line."""
        parts = [self.question(example)]
        if example.choices:
            parts.append(options_block(example.choices, self.letter_options))
        if self.instruction:  # "" asks the question as the dataset wrote it (a TRL or ms-SWIFT prompt)
            parts.append(self.instruction)
        return "\n".join(parts)

    def messages(self, example: Question, with_audio: bool = True) -> list[dict]:
        """Chat messages; the user turn starts with an audio part when `with_audio`, else is a plain string."""
        text = self.user_text(example)
        # The "audio" key matters: Qwen2-Audio's hub chat template tests `'audio' in content`, not the type.
        audio = {"type": "audio", "audio": example.meta.get("audio_path", example.id)}
        user = [audio, {"type": "text", "text": text}] if with_audio else text
        # The template's system message, else the dataset's own (a TRL or ms-SWIFT record's system turn).
        system_text = self.system if self.system is not None else example.meta.get("prompt_system")
        system = [{"role": "system", "content": system_text}] if system_text is not None else []
        return [*system, {"role": "user", "content": user}]


def think_template(**overrides) -> PromptTemplate:
    """CESAR-style: think step by step, then answer."""
    return PromptTemplate(**{"instruction": THINK_INSTRUCTION, "mode": "think", **overrides})


def adaptive_template(**overrides) -> PromptTemplate:
    """Audio-Thinker-style: decide whether to think."""
    return PromptTemplate(**{"instruction": ADAPTIVE_INSTRUCTION, "mode": "adaptive", **overrides})


def direct_template(**overrides) -> PromptTemplate:
    """Answer directly, no reasoning."""
    return PromptTemplate(**{"instruction": DIRECT_INSTRUCTION, "mode": "direct", **overrides})


THINK, ADAPTIVE, DIRECT = think_template(), adaptive_template(), direct_template()
TEMPLATES: dict[str, PromptTemplate] = {"think": THINK, "adaptive": ADAPTIVE, "direct": DIRECT}
