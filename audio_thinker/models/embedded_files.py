"""The embedded models: tiny checkpoints shipped as package files, verified by their hashes when they load.

`audio-thinker build-models` (`audio_thinker.embedded.build`) writes them, each with the hearing or format check it
passed, into `assets/embedded/`; `manifest.json` there records every file's SHA-256. Every machine then starts from
the same weights: a model trained at run time would depend on the arithmetic of the CPU it was built on.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources
from pathlib import Path

MANIFEST = "manifest.json"
# Embedded name -> its directory under assets/embedded/ (the name users write as `model.path`).
NAMES = ("tiny-qwen2-audio", "tiny-qwen2", "tiny-qwen2_5-omni")
REBUILD = "rebuild them with `audio-thinker build-models`, or reinstall the package"


class EmbeddedModelError(RuntimeError):
    """A shipped model file that is missing or not the file the manifest recorded."""


def shipped_root() -> Path:
    """The package's directory of embedded models."""
    return Path(str(resources.files("audio_thinker").joinpath("assets", "embedded")))


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(root: Path | None = None) -> dict:
    """`manifest.json` of a directory of embedded models (default: the shipped one)."""
    path = (root or shipped_root()) / MANIFEST
    if not path.is_file():
        raise EmbeddedModelError(f"{path} is missing: the embedded models are not installed; {REBUILD}")
    return json.loads(path.read_text())


@functools.cache
def embedded_model_dir(name: str, root: Path | None = None) -> Path:
    """The directory of embedded model `name`, after checking every file against its recorded SHA-256."""
    root = root or shipped_root()
    models = read_manifest(root)["models"]
    if name not in models:
        raise EmbeddedModelError(f"{root / MANIFEST} has no model {name!r} (it has {sorted(models)}); {REBUILD}")
    directory = root / name
    for file, expected in models[name]["files"].items():
        path = directory / file
        if not path.is_file():
            raise EmbeddedModelError(f"embedded model {name}: {path} is missing; {REBUILD}")
        if sha256_of(path) != expected:
            raise EmbeddedModelError(
                f"embedded model {name}: {path} does not match the SHA-256 in {root / MANIFEST} (changed or "
                f"corrupted since it was built); {REBUILD}"
            )
    return directory
