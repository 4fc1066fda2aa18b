"""Synthetic audio reasoning tasks whose answers follow from the audio, generated offline with torch.

Every example is a pure function of (seed, index): the same seed always gives the same audio, question and
answer, in any process. Difficulty is how close the two stimuli are (or how many events there are), so
"hard" really is harder to hear. Option order is shuffled so no fixed letter is right. `meta["caption"]` describes
the sound without the question ("a low tone, then a high tone"): the embedded model learns to hear from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from audio_thinker.example import AudioQAExample

DIFFICULTIES = ("easy", "medium", "hard")
ORDINALS = ("first", "second")


def tone(freq_hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> torch.Tensor:
    """A sine tone with 10 ms raised-cosine fades (no clicks, so onsets do not give the answer away)."""
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    wave = amplitude * torch.sin(2 * math.pi * freq_hz * t)
    fade = min(int(0.01 * rate), wave.numel() // 2)
    if fade:
        ramp = 0.5 - 0.5 * torch.cos(torch.linspace(0, math.pi, fade, dtype=torch.float64))
        wave[:fade] *= ramp
        wave[-fade:] *= ramp.flip(0)
    return wave


def silence(seconds: float, rate: int) -> torch.Tensor:
    """Zeros for `seconds`."""
    return torch.zeros(int(seconds * rate), dtype=torch.float64)


def _pair_question(
    rng: np.random.Generator, question: str, winner: int, descriptors: Sequence[str] = ORDINALS
) -> tuple[list[str], str]:
    """Shuffled two-option choices for 'which of the two ...' questions and the gold option text."""
    choices = [f"the {d} {question}" for d in descriptors]
    answer = choices[winner]
    rng.shuffle(choices)
    return choices, answer


def _two_tones(lesser: str, greater: str, second_greater: bool) -> str:
    """The caption of a two-tone clip: 'a low tone, then a high tone' or the other way round."""
    first, second = (lesser, greater) if second_greater else (greater, lesser)
    return f"a {first} tone, then a {second} tone"


def pitch_compare(rng: np.random.Generator, difficulty: str, rate: int) -> tuple[torch.Tensor, dict]:
    """Two tones; which one is higher? Difficulty = interval: 12, 4 or 1 semitones."""
    semitones = {"easy": 12, "medium": 4, "hard": 1}[difficulty]
    low = float(rng.uniform(220, 440))
    freqs = [low, low * 2 ** (semitones / 12)]
    if rng.random() < 0.5:
        freqs.reverse()
    audio = torch.cat([tone(freqs[0], 0.8, rate), silence(0.3, rate), tone(freqs[1], 0.8, rate)])
    choices, answer = _pair_question(rng, "tone", int(np.argmax(freqs)))
    return audio, {
        "question": "Which of the two tones is higher in pitch?",
        "choices": choices,
        "answer": answer,
        "freqs_hz": freqs,
        "caption": _two_tones("low", "high", freqs[1] > freqs[0]),
    }


def loudness_compare(rng: np.random.Generator, difficulty: str, rate: int) -> tuple[torch.Tensor, dict]:
    """Two equal-pitch tones; which one is louder? Difficulty = level difference: 12, 6 or 2 dB."""
    db = {"easy": 12.0, "medium": 6.0, "hard": 2.0}[difficulty]
    amps = [0.5, 0.5 * 10 ** (-db / 20)]
    if rng.random() < 0.5:
        amps.reverse()
    freq = float(rng.uniform(300, 600))
    audio = torch.cat([tone(freq, 0.8, rate, amps[0]), silence(0.3, rate), tone(freq, 0.8, rate, amps[1])])
    choices, answer = _pair_question(rng, "tone", int(np.argmax(amps)))
    return audio, {
        "question": "Which of the two tones is louder?",
        "choices": choices,
        "answer": answer,
        "amplitudes": amps,
        "caption": _two_tones("soft", "loud", amps[1] > amps[0]),
    }


def duration_compare(rng: np.random.Generator, difficulty: str, rate: int) -> tuple[torch.Tensor, dict]:
    """Two tones; which one lasts longer? Difficulty = duration ratio: 2.0, 1.4 or 1.15."""
    ratio = {"easy": 2.0, "medium": 1.4, "hard": 1.15}[difficulty]
    short = float(rng.uniform(0.4, 0.7))
    durations = [short, short * ratio]
    if rng.random() < 0.5:
        durations.reverse()
    freq = float(rng.uniform(300, 600))
    audio = torch.cat([tone(freq, durations[0], rate), silence(0.3, rate), tone(freq, durations[1], rate)])
    choices, answer = _pair_question(rng, "tone", int(np.argmax(durations)))
    return audio, {
        "question": "Which of the two tones is longer?",
        "choices": choices,
        "answer": answer,
        "durations_s": durations,
        "caption": _two_tones("short", "long", durations[1] > durations[0]),
    }


def count_beeps(rng: np.random.Generator, difficulty: str, rate: int) -> tuple[torch.Tensor, dict]:
    """N short beeps; how many? Difficulty = counts and gap: 1-4 wide apart, 3-6, 5-8 close together.

    Nothing but listening gives the count away: the options are the level's four counts (the text cannot
    narrow them down) and every clip of a level is padded with silence to one length (nor can the clip's length).
    """
    low, gap = {"easy": (1, 0.3), "medium": (3, 0.15), "hard": (5, 0.08)}[difficulty]
    counts = list(range(low, low + 4))
    count = int(rng.choice(counts))
    freq = float(rng.uniform(600, 1000))
    parts = [silence(0.1, rate)]
    for _ in range(count):
        parts += [tone(freq, 0.12, rate), silence(gap, rate)]
    audio = torch.cat(parts)
    longest = silence(0.1, rate).numel() + counts[-1] * (tone(freq, 0.12, rate).numel() + silence(gap, rate).numel())
    audio = torch.cat([audio, torch.zeros(longest - audio.numel(), dtype=audio.dtype)])
    return audio, {
        "question": "How many beeps do you hear?",
        "choices": [str(c) for c in counts],
        "answer": str(count),
        "count": count,
        "caption": f"{count} beep" + "s" * (count > 1),
    }


def rhythm_regularity(rng: np.random.Generator, difficulty: str, rate: int) -> tuple[torch.Tensor, dict]:
    """Six clicks, evenly spaced or jittered; is the rhythm regular? Difficulty = jitter: 40%, 25%, 12%."""
    jitter = {"easy": 0.4, "medium": 0.25, "hard": 0.12}[difficulty]
    regular = bool(rng.random() < 0.5)
    period = float(rng.uniform(0.35, 0.5))
    offsets = np.zeros(6) if regular else rng.uniform(-jitter, jitter, size=6) * period
    if not regular:
        # Guarantee one *interval* (not just one onset) is off by the full jitter: moving a single onset to
        # +-jitter is not enough, since its neighbour may have moved the same way and kept the interval even.
        k = int(rng.integers(1, 6))
        step = jitter * period * (1 if rng.random() < 0.5 else -1)
        if abs(offsets[k - 1] + step) > jitter * period:  # stay within +-jitter so clicks stay inside the clip
            step = -step
        offsets[k] = offsets[k - 1] + step
    audio = silence(0.1 + 6 * period + jitter * period + 0.2, rate)
    click = tone(float(rng.uniform(800, 1200)), 0.05, rate)
    for i in range(6):
        start = int((0.1 + jitter * period + i * period + offsets[i]) * rate)
        audio[start : start + click.numel()] += click
    choices = ["regular", "irregular"]
    return audio, {
        "question": "Is the rhythm of the clicks regular or irregular?",
        "choices": choices,
        "answer": "regular" if regular else "irregular",
        "onset_offsets_s": offsets.tolist(),
        "caption": "six steady clicks" if regular else "six uneven clicks",
    }


CONTOURS = {"rising": (1, 1), "falling": (-1, -1), "up then down": (1, -1), "down then up": (-1, 1)}


def melody_contour(rng: np.random.Generator, difficulty: str, rate: int) -> tuple[torch.Tensor, dict]:
    """Three tones; rising, falling, up then down, or down then up? Difficulty = step: 7, 3 or 1 semitones."""
    step = {"easy": 7, "medium": 3, "hard": 1}[difficulty]
    contour = list(CONTOURS)[int(rng.integers(len(CONTOURS)))]
    first, second = CONTOURS[contour]
    base = float(rng.uniform(262, 392))
    freqs = [base, base * 2 ** (first * step / 12), base * 2 ** ((first + second) * step / 12)]
    gap = silence(0.2, rate)
    audio = torch.cat([tone(freqs[0], 0.6, rate), gap, tone(freqs[1], 0.6, rate), gap, tone(freqs[2], 0.6, rate)])
    choices = list(CONTOURS)
    rng.shuffle(choices)
    return audio, {
        "question": "How does the pitch move across the three tones?",
        "choices": choices,
        "answer": contour,
        "freqs_hz": freqs,
        "caption": "three notes, " + ", then ".join("up" if step > 0 else "down" for step in (first, second)),
    }


TASKS: dict[str, Callable[[np.random.Generator, str, int], tuple[torch.Tensor, dict]]] = {
    "pitch_compare": pitch_compare,
    "loudness_compare": loudness_compare,
    "duration_compare": duration_compare,
    "count_beeps": count_beeps,
    "rhythm_regularity": rhythm_regularity,
    "melody_contour": melody_contour,  # appended last: earlier tasks keep their per-task seeds
}


def make_example(seed: int, index: int, task: str, difficulty: str, rate: int = 16_000) -> AudioQAExample:
    """Example `index` of `task` at `difficulty`, a pure function of its arguments."""
    if task not in TASKS:
        raise ValueError(f"unknown synthetic task {task!r}; known: {sorted(TASKS)}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"unknown difficulty {difficulty!r}; known: {list(DIFFICULTIES)}")
    rng = np.random.default_rng([seed, index, list(TASKS).index(task), DIFFICULTIES.index(difficulty)])
    audio, spec = TASKS[task](rng, difficulty, rate)
    question, choices, answer = spec.pop("question"), spec.pop("choices"), spec.pop("answer")
    return AudioQAExample(
        id=f"synthetic-{seed}-{index:06d}",
        question=question,
        answer=answer,
        choices=choices,
        audio=audio.to(torch.float32).numpy(),
        sampling_rate=rate,
        task=task,
        difficulty=difficulty,
        meta=spec,
    )


class SyntheticAudioQA(Dataset):
    """`size` synthetic examples cycling through `tasks` x `difficulties`, deterministic by `seed`."""

    def __init__(
        self,
        size: int = 64,
        seed: int = 0,
        tasks: Sequence[str] = tuple(TASKS),
        difficulties: Sequence[str] = DIFFICULTIES,
        sampling_rate: int = 16_000,
    ) -> None:
        unknown = set(tasks) - set(TASKS)
        if unknown:
            raise ValueError(f"unknown synthetic task(s) {sorted(unknown)}; known: {sorted(TASKS)}")
        self.size, self.seed, self.rate = size, seed, sampling_rate
        self.tasks, self.difficulties = list(tasks), list(difficulties)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> AudioQAExample:
        if not 0 <= index < self.size:
            raise IndexError(index)
        task = self.tasks[index % len(self.tasks)]
        difficulty = self.difficulties[(index // len(self.tasks)) % len(self.difficulties)]
        return make_example(self.seed, index, task, difficulty, self.rate)
