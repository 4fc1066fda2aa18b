"""The embedded tiny Qwen2-Audio and a few synthetic validation examples, shared by the eval and callback tests."""

from __future__ import annotations

import pytest

from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.models.loading import load_policy


@pytest.fixture(scope="session")
def tiny_policy():
    return load_policy("tiny-qwen2-audio")


@pytest.fixture(scope="session")
def val_examples():
    """Four examples of different tasks (and clip lengths, so prompts are left padded)."""
    data = SyntheticAudioQA(size=8, seed=100003)
    return [data[i] for i in range(4)]
