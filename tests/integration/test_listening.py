"""The default run learns to listen: GRPO lifts held-out accuracy from chance, and not with the audio silenced.

Each run is `audio-thinker train` with no arguments (the embedded model and its recipe,
configs/recipe/tiny_qwen2_audio_synthetic.yaml), seed 0, without checkpoints or export. The default suite runs it
shortened (20 steps) and asserts a rise; `pytest -m slow` runs it whole (60 steps), then its silence control.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audio_thinker.cli import compose_run
from audio_thinker.train import train
from tests.helpers.tb import read_scalars

CHANCE = 0.6  # two options; 32 held-out examples, so a constant answer scores 0.38-0.62 depending on the draw


def held_out_accuracy(output_dir: Path, steps: int, control: str | None = None) -> tuple[float, float]:
    """`val/accuracy` (before the first step, after the last) of the default run cut to `steps`."""
    overrides = [
        "trainer.accelerator=cpu",
        f"trainer.max_steps={steps}",
        f"trainer.val_check_interval={steps}",
        "trainer.enable_progress_bar=false",
        "callbacks.model_checkpoint=null",
        "callbacks.export=null",
    ]
    train(compose_run(output_dir, [*overrides, *([f"data.audio_control={control}"] if control else [])]))
    curve = read_scalars(output_dir / "tensorboard", "val/accuracy")
    return curve[0][1], curve[-1][1]


def test_twenty_steps_of_the_default_run_raise_held_out_accuracy_from_chance(tmp_path):
    before, after = held_out_accuracy(tmp_path, steps=20)
    assert before <= CHANCE and after >= before + 0.3, (before, after)  # measured: 0.47 -> 1.00


@pytest.mark.slow
def test_the_default_run_learns_from_the_sound_and_not_from_silence(tmp_path):
    before, after = held_out_accuracy(tmp_path / "audio", steps=60)
    assert before <= CHANCE and after >= 0.8, (before, after)  # measured: 0.47 -> 1.00
    before, after = held_out_accuracy(tmp_path / "silence", steps=60, control="silence")
    assert after <= CHANCE, (before, after)  # measured: 0.47 -> 0.53
