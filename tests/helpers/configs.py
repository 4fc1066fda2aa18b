"""The real `configs/train.yaml` composed with fast CPU settings (conftest turns `compose_train` into a fixture)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from audio_thinker.run_names import register_resolver

register_resolver()  # the configs name sweep folders with `${run_folder:...}`
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")

# Small enough for a 2-core CPU: a handful of steps, short completions, a tiny dataset.
FAST = [
    "trainer.accelerator=cpu",
    "trainer.max_steps=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "rollout.max_new_tokens=12",
    "rollout.group_size=2",
]
# Only for the default synthetic data; dropped when a test picks another data config.
FAST_SYNTHETIC = ["data.train.size=8", "data.val.size=4"]


def compose_train(output_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The real `configs/train.yaml` with FAST settings, `overrides`, and outputs under `output_dir`."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        other_data = any(o.startswith("data=") for o in overrides)
        fast = FAST if other_data else [*FAST, *FAST_SYNTHETIC]
        cfg = compose("train", overrides=[*fast, *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg
