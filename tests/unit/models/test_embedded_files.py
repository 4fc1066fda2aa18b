"""The embedded models ship as package files: every name loads from them, and a changed or missing file is refused."""

from __future__ import annotations

import shutil

import pytest

from audio_thinker.models.embedded_files import (
    MANIFEST,
    NAMES,
    EmbeddedModelError,
    embedded_model_dir,
    read_manifest,
    sha256_of,
    shipped_root,
)
from audio_thinker.models.loading import load_policy


def test_every_embedded_name_ships_with_the_files_its_manifest_records():
    models = read_manifest()["models"]
    assert set(models) == set(NAMES)
    for name in NAMES:
        directory = embedded_model_dir(name)
        assert directory == shipped_root() / name
        assert {"config.json", "model.safetensors"} <= set(models[name]["files"])
        assert all(models[name]["check"][key] >= models[name]["bars"][key] for key in models[name]["check"])


@pytest.mark.parametrize("name", NAMES)
def test_an_embedded_name_loads_without_building_anything(name, monkeypatch):
    import audio_thinker.embedded.build as build

    for builder in build.BUILDERS:
        monkeypatch.setitem(build.BUILDERS, builder, lambda *_: pytest.fail("loading must not build"))
    policy = load_policy(name)
    assert policy.tokenizer.convert_tokens_to_ids("<think>") != policy.tokenizer.unk_token_id


@pytest.fixture
def shipped_copy(tmp_path):
    """A copy of the shipped models to damage."""
    root = tmp_path / "embedded"
    shutil.copytree(shipped_root(), root)
    return root


def test_a_changed_weight_file_is_refused_naming_it(shipped_copy):
    weights = shipped_copy / "tiny-qwen2" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte inside the tensors
    weights.write_bytes(bytes(data))
    with pytest.raises(EmbeddedModelError, match=r"tiny-qwen2.*model\.safetensors.*does not match the SHA-256"):
        embedded_model_dir("tiny-qwen2", shipped_copy)
    assert embedded_model_dir("tiny-qwen2-audio", shipped_copy)  # the other models are untouched


def test_a_missing_file_or_manifest_says_how_to_get_them_back(shipped_copy):
    (shipped_copy / "tiny-qwen2" / "config.json").unlink()
    with pytest.raises(EmbeddedModelError, match="config.json is missing.*audio-thinker build-models"):
        embedded_model_dir("tiny-qwen2", shipped_copy)
    (shipped_copy / MANIFEST).unlink()
    with pytest.raises(EmbeddedModelError, match="manifest.json is missing.*reinstall"):
        embedded_model_dir("tiny-qwen2-audio", shipped_copy)


def test_sha256_of_reads_the_bytes(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert sha256_of(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2 vector
