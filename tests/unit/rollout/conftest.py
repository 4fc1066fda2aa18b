"""Fixtures of the rollout tests: a venv whose vLLM is the fake server (`tests/helpers/fake_vllm_server.py`)."""

from __future__ import annotations

import shutil
import venv
from pathlib import Path

import pytest

from audio_thinker.rollout.server import READY_MARKER
from tests.helpers import fake_vllm_server


@pytest.fixture(scope="session")
def fake_venv(tmp_path_factory) -> Path:
    """A venv whose `vllm.entrypoints.openai.api_server` is the fake server."""
    root = tmp_path_factory.mktemp("fake-vllm-venv")
    venv.create(root, with_pip=False)
    site = next(root.glob("lib/python*/site-packages"))
    package = site / "vllm" / "entrypoints" / "openai"
    package.mkdir(parents=True)
    for folder in (site / "vllm", site / "vllm" / "entrypoints", package):
        (folder / "__init__.py").write_text("")
    shutil.copy(fake_vllm_server.__file__, package / "api_server.py")
    (root / READY_MARKER).write_text("fake\n")
    return root
