"""The real `configs/train.yaml` composed with fast CPU settings (conftest turns `compose_train` into a fixture)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from omegaconf import DictConfig

from audio_thinker.cli import CONFIG_MODULE, compose_run
from audio_thinker.run_names import register_resolver

register_resolver()  # also for tests that compose configs themselves (`${run_folder:...}`)
# The packaged configs (audio_thinker/configs, wherever the package is installed), for tests that read a YAML.
CONFIGS = Path(resources.files(CONFIG_MODULE))

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


# A user's own reward suite, in a directory of their own: the packaged `rlvr` plus a term of its own.
USER_REWARD_SUITE = """\
defaults:
  - rlvr
  - _self_
terms:
  my_format:
    _target_: audio_thinker.rewards.outcome.FormatReward
    weight: 0.5
    require: think
"""


def user_config_dir(root: Path) -> Path:
    """A config directory outside the package with `reward/my_suite.yaml` (select it with `reward=my_suite`)."""
    (root / "reward").mkdir(parents=True, exist_ok=True)
    (root / "reward" / "my_suite.yaml").write_text(USER_REWARD_SUITE)
    return root
