"""Shared fixtures: an isolated model cache and the real train.yaml composed with fast CPU settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from audio_thinker.run_names import register_resolver

# One thread per process: the tiny models gain nothing from more, and on a 2-core CI machine the test
# process and its CLI subprocesses would otherwise fight over the cores (3-10x slower under contention).
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

register_resolver()  # the configs name sweep folders with `${run_folder:...}`
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")

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


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Path:
    """Build embedded models into a per-session cache (subprocesses inherit it through the environment)."""
    cache = Path(os.environ.setdefault("AUDIO_THINKER_CACHE", str(tmp_path_factory.mktemp("model_cache"))))
    return cache


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


@pytest.fixture
def train_cfg(tmp_path):
    """A factory: `train_cfg(["loss.beta=0"])` -> composed config writing under tmp_path."""
    return lambda overrides=(): compose_train(tmp_path, overrides)
