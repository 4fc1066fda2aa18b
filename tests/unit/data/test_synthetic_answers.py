"""The synthetic tasks' answers follow from the audio alone, and their difficulty levels really differ.

Each "listener" below recomputes the answer from the waveform only (never from the generator's metadata):
segments by envelope, pitch by FFT peak, loudness by RMS, durations by segment length, counts by onsets,
rhythm by onset intervals. It also measures how far apart the stimuli are, which must shrink with difficulty.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

import numpy as np
import pytest

from audio_thinker.data.synthetic import CONTOURS, DIFFICULTIES, ORDINALS, TASKS, SyntheticAudioQA, make_example
from audio_thinker.example import AudioQAExample
from tests.helpers.data import peak_hz

RATE = 16_000
SEEDS, INDICES = (0, 1, 7), range(4)


def segments(wave: np.ndarray, threshold: float = 0.01, frame_s: float = 0.002) -> list[np.ndarray]:
    """The sounding parts of `wave`: runs of 2 ms frames whose peak exceeds `threshold`."""
    frame = int(frame_s * RATE)
    n = len(wave) // frame
    active = np.abs(wave[: n * frame]).reshape(n, frame).max(axis=1) > threshold
    edges = np.diff(np.concatenate([[0], active.astype(int), [0]]))
    starts, ends = np.flatnonzero(edges == 1) * frame, np.flatnonzero(edges == -1) * frame
    return [wave[s:e] for s, e in zip(starts, ends, strict=True)]


def onsets(wave: np.ndarray) -> np.ndarray:
    """Onset times (s) of the sounding parts."""
    frame = int(0.002 * RATE)
    n = len(wave) // frame
    active = np.abs(wave[: n * frame]).reshape(n, frame).max(axis=1) > 0.01
    return np.flatnonzero(np.diff(np.concatenate([[0], active.astype(int)])) == 1) * frame / RATE


def middle(segment: np.ndarray) -> np.ndarray:
    """The central 80% (skips the fades)."""
    cut = len(segment) // 10
    return segment[cut : len(segment) - cut]


def ordinal(index: int) -> str:
    return f"the {ORDINALS[index]} tone"


def semitones(a: float, b: float) -> float:
    return 12 * abs(np.log2(b / a))


def pitch(wave):
    freqs = [peak_hz(s, RATE) for s in segments(wave)]
    return ordinal(int(np.argmax(freqs))), semitones(*freqs)


def loudness(wave):
    levels = [np.sqrt(np.mean(middle(s) ** 2)) for s in segments(wave)]
    return ordinal(int(np.argmax(levels))), 20 * np.log10(max(levels) / min(levels))


def duration(wave):
    lengths = [len(s) / RATE for s in segments(wave)]
    return ordinal(int(np.argmax(lengths))), max(lengths) / min(lengths)


def beeps(wave) -> tuple[str, float | None]:
    times = onsets(wave)
    ends = times[:-1] + [len(s) / RATE for s in segments(wave)[:-1]]
    return str(len(times)), float(np.median(times[1:] - ends)) if len(times) > 1 else None  # one beep: no gap


def rhythm(wave):
    intervals = np.diff(onsets(wave))
    deviation = float(np.max(np.abs(intervals - np.median(intervals))) / np.median(intervals))
    return ("regular" if deviation < 0.03 else "irregular"), deviation


def melody(wave):
    freqs = [peak_hz(s, RATE) for s in segments(wave)]
    moves = tuple(int(np.sign(b - a)) for a, b in zip(freqs, freqs[1:], strict=False))
    contour = next(name for name, steps in CONTOURS.items() if steps == moves)
    return contour, semitones(freqs[0], freqs[1])


LISTENERS: dict[str, Callable[[np.ndarray], tuple[str, float]]] = {
    "pitch_compare": pitch,
    "loudness_compare": loudness,
    "duration_compare": duration,
    "count_beeps": beeps,
    "rhythm_regularity": rhythm,
    "melody_contour": melody,
}
# What each listener's distance measures, at easy / medium / hard (the generator's nominal values).
NOMINAL = {
    "pitch_compare": (12, 4, 1),  # semitones
    "loudness_compare": (12, 6, 2),  # dB
    "duration_compare": (2.0, 1.4, 1.15),  # ratio
    "count_beeps": (0.3, 0.15, 0.08),  # gap between beeps, s
    "melody_contour": (7, 3, 1),  # semitones per step
}


def examples(task: str, difficulty: str) -> list[AudioQAExample]:
    return [make_example(seed, index, task, difficulty) for seed in SEEDS for index in INDICES]


def test_every_task_has_a_listener():
    assert set(LISTENERS) == set(TASKS)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("task", list(TASKS))
def test_the_answer_is_what_the_audio_says(task, difficulty):
    batch = examples(task, difficulty)
    for example in batch:
        heard, distance = LISTENERS[task](example.audio)
        assert heard == example.answer, (example.id, example.meta)
        assert example.answer in example.choices and len(set(example.choices)) == len(example.choices)
        assert example.audio.shape[0] <= 4 * RATE  # the tiny model's audio window
        if task in NOMINAL and distance is not None:
            nominal = NOMINAL[task][DIFFICULTIES.index(difficulty)]
            assert distance == pytest.approx(nominal, rel=0.08), (example.id, distance)
    # No fixed option letter or fixed answer gives the result away.
    assert len({e.answer_letter for e in batch}) > 1 and len({e.answer for e in batch}) > 1


@pytest.mark.parametrize("task", list(TASKS))
def test_nothing_but_the_sound_gives_the_answer_away(task):
    """What a model can read without listening (the question, the options and their order, the clip's length,
    which sets its number of audio tokens) does not predict the answer: audio controls then stay at chance."""
    for difficulty in DIFFICULTIES:
        batch = [make_example(3, index, task, difficulty) for index in range(240)]
        chance = 1 / len(batch[0].choices)
        positions = Counter(e.choices.index(e.answer) for e in batch)
        assert max(positions.values()) / len(batch) < chance + 0.1, (difficulty, positions)  # no favourite letter
        by_options: dict[tuple, Counter] = defaultdict(Counter)
        for e in batch:
            by_options[tuple(e.choices)][e.answer] += 1
        for options, answers in by_options.items():  # no favourite answer for a given option list
            if answers.total() >= 20:
                assert max(answers.values()) / answers.total() < chance + 0.12, (difficulty, options, answers)
        seconds = np.array([len(e.audio) / RATE for e in batch])
        for answer in {e.answer for e in batch}:  # the clip's length says nothing either
            mine = seconds[[e.answer == answer for e in batch]]
            assert abs(mine.mean() - seconds.mean()) < 0.03 * seconds.mean(), (difficulty, answer)


def test_difficulty_really_varies():
    for task in ("count_beeps", "rhythm_regularity"):
        per_level = [examples(task, d) for d in DIFFICULTIES]
        if task == "count_beeps":  # harder = more beeps, closer together
            counts = [np.mean([int(e.answer) for e in level]) for level in per_level]
            assert counts[0] < counts[1] < counts[2]
        else:  # harder = smaller timing deviation of the irregular rhythms
            deviations = [
                np.median([rhythm(e.audio)[1] for e in level if e.answer == "irregular"]) for level in per_level
            ]
            assert deviations[0] > deviations[1] > deviations[2] > 0.05


def test_irregular_rhythms_are_off_by_at_least_half_the_nominal_jitter():
    jitter = {"easy": 0.4, "medium": 0.25, "hard": 0.12}
    for difficulty, amount in jitter.items():
        for index in range(40):
            example = make_example(11, index, "rhythm_regularity", difficulty)
            if example.answer == "irregular":
                assert rhythm(example.audio)[1] > amount / 2, example.id


def test_generation_is_deterministic_and_seed_dependent():
    a, b, c = SyntheticAudioQA(12, seed=4), SyntheticAudioQA(12, seed=4), SyntheticAudioQA(12, seed=5)
    assert all(np.array_equal(a[i].audio, b[i].audio) and a[i].answer == b[i].answer for i in range(12))
    assert not all(np.array_equal(a[i].audio, c[i].audio) for i in range(12))
