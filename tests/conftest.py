"""Shared fixtures: an isolated model cache (benchmark models) and the real train.yaml with fast CPU settings."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch

from tests.helpers.configs import compose_train

# One thread per process: the tiny models gain nothing from more, and on a 2-core CI machine the test
# process and its CLI subprocesses would otherwise fight over the cores (3-10x slower under contention).
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Path:
    """Build benchmark models into a per-session cache (subprocesses inherit it through the environment); the
    embedded models ship with the package and need none."""
    cache = Path(os.environ.setdefault("AUDIO_THINKER_CACHE", str(tmp_path_factory.mktemp("model_cache"))))
    return cache


@pytest.fixture
def train_cfg(tmp_path):
    """A factory: `train_cfg(["loss.beta=0"])` -> composed config writing under tmp_path."""
    return lambda overrides=(): compose_train(tmp_path, overrides)


def _all_loggers() -> list[logging.Logger]:
    named = logging.root.manager.loggerDict.values()
    return [logging.getLogger(), *(x for x in named if isinstance(x, logging.Logger))]


@pytest.fixture(autouse=True)
def no_leftover_log_handlers():
    """Remove the log handlers a test added. An in-process Hydra run configures logging with handlers on pytest's
    captured streams, which are closed after the test: a later test's log line then printed 'Logging error'."""
    before = {id(logger): list(logger.handlers) for logger in _all_loggers()}
    yield
    for logger in _all_loggers():
        for handler in [h for h in logger.handlers if h not in before.get(id(logger), [])]:
            logger.removeHandler(handler)
