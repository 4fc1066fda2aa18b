"""The whole build of the default model, as `audio-thinker build-models` runs it: it passes its own check."""

from __future__ import annotations

import pytest

from audio_thinker.embedded.build import build_models
from audio_thinker.models.embedded_files import embedded_model_dir, read_manifest
from audio_thinker.models.loading import load_policy


@pytest.mark.slow
def test_a_fresh_build_of_the_audio_model_hears_every_task_and_level(tmp_path):
    out = tmp_path / "embedded"
    build_models(out, ("tiny-qwen2-audio",))  # ~3 minutes on a 2-core CPU; raises if the check never passes
    entry = read_manifest(out)["models"]["tiny-qwen2-audio"]
    hearing = {k: v for k, v in entry["check"].items() if k.startswith("hearing ")}
    assert len(hearing) == 4 and min(hearing.values()) >= entry["bars"]["hearing pitch_compare/easy"]
    assert entry["steps"]["hearing"] >= 300 and entry["steps"]["listening"] >= 400
    assert load_policy(str(embedded_model_dir("tiny-qwen2-audio", out))).has_audio
