"""The real `configs/train.yaml` composed with fast CPU settings (conftest turns `compose_train` into a fixture)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from audio_thinker.cli import compose_run
from audio_thinker.run_names import register_resolver

register_resolver()  # also for tests that compose configs themselves (`${run_folder:...}`)
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")

# Small enough for a 2-core CPU: a handful of steps, short completions, a tiny dataset.
FAST = [
    "trainer.accelerator=cpu",
    "trainer.max_steps=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "rollout.max_new_tokens=12",
    "rollout.group_size=2",
    "data.batch_size=2",  # the embedded model's recipe (configs/recipe/) trains 8 prompts a step
]
# Only for the default synthetic data; dropped when a test picks another data config.
FAST_SYNTHETIC = ["data.train.size=8", "data.val.size=4"]


def compose_train(output_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The real `configs/train.yaml` with FAST settings, `overrides`, and outputs under `output_dir`."""
    fast = FAST if any(o.startswith("data=") for o in overrides) else [*FAST, *FAST_SYNTHETIC]
    return compose_run(output_dir, [*fast, *overrides])
