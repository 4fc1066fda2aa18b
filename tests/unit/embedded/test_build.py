"""`audio-thinker build-models`: what it writes loads and verifies; a model that fails its check is never written."""

from __future__ import annotations

import json

import pytest

from audio_thinker.cli import main
from audio_thinker.embedded import build
from audio_thinker.embedded.listening import ListeningSchedule
from audio_thinker.models.embedded_files import MANIFEST, embedded_model_dir, read_manifest
from audio_thinker.models.loading import load_policy


def test_a_built_model_is_written_with_its_hashes_and_check_and_loads(tmp_path, capsys):
    out = tmp_path / "embedded"
    with pytest.raises(SystemExit) as exit_:
        main(["build-models", "--out", str(out), "--only", "tiny-qwen2"])
    assert exit_.value.code == 0
    entry = read_manifest(out)["models"]["tiny-qwen2"]
    assert entry["check"]["format"] >= entry["bars"]["format"] and entry["steps"] == {"format": 150}
    assert entry["machine"]["torch"] and entry["seed"] == 0
    directory = embedded_model_dir("tiny-qwen2", out)
    assert sorted(p.name for p in directory.iterdir()) == sorted(entry["files"])
    assert load_policy(str(directory)).tokenizer.chat_template
    assert f"tiny-qwen2: format {entry['check']['format']:.2f}" in capsys.readouterr().out


def test_a_model_that_fails_its_check_stops_the_build_and_leaves_the_old_files(tmp_path, monkeypatch):
    out = tmp_path / "embedded"
    out.mkdir()
    (out / MANIFEST).write_text(json.dumps({"models": {}}))
    too_short = ListeningSchedule(reasoning_steps=1, hearing_steps=1, listening_steps=1, hesitant_steps=0, max_rounds=1)
    monkeypatch.setitem(build.BUILDERS, "tiny-qwen2-audio", lambda seed: build.build_listening_model(seed, too_short))
    with pytest.raises(build.BuildCheckFailed, match=r"did not pass its check after 1 rounds.*hearing .*\(< 0\.95\)"):
        build.build_models(out, ("tiny-qwen2-audio",))
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST]  # nothing written
    assert not list(tmp_path.glob(".building-*"))  # no staging left behind
