"""The package installs as a package: a wheel, installed where no source checkout is in sight, trains from an
unrelated directory with the configs and embedded models it ships, and takes a user's own config directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers.configs import FAST, FAST_SYNTHETIC, user_config_dir
from tests.helpers.tb import scalar_tags

ROOT = Path(__file__).resolve().parents[2]
# pip cannot fetch the build backend (setuptools, wheel) for its isolated build environment.
OFFLINE = ("Could not find a version that satisfies", "NewConnectionError", "Temporary failure in name resolution")


def build_wheel(out: Path) -> Path:
    """`pip wheel .` of a copy of the checkout (the build writes build/ and *.egg-info beside its sources)."""
    src = out / "src"
    shutil.copytree(ROOT / "audio_thinker", src / "audio_thinker", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(src)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0 and any(sign in result.stderr for sign in OFFLINE):
        pytest.skip(f"building a wheel needs setuptools and wheel from the package index: {result.stderr[-500:]}")
    assert result.returncode == 0, result.stderr[-3000:]
    return next(out.glob("audio_thinker-*.whl"))


def succeed(*cmd: str) -> str:
    """Run `cmd`; its stdout, or a failure showing its stderr."""
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{cmd}: {result.stderr[-3000:]}"
    return result.stdout


def fresh_venv(path: Path, wheel: Path) -> Path:
    """A new virtual environment holding the wheel; its dependencies come from this environment's site-packages,
    added as a plain path (so no .pth file there runs, and the editable install's import hook stays out)."""
    succeed(sys.executable, "-m", "venv", "--without-pip", str(path))
    python = str(path / "bin" / "python")
    site = succeed(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "dependencies.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    succeed(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", str(wheel))
    return path / "bin"


@pytest.mark.slow
def test_a_wheel_trains_from_an_unrelated_directory_with_a_users_config_dir(tmp_path):
    wheel = build_wheel(tmp_path / "dist")
    bin_dir = fresh_venv(tmp_path / "venv", wheel)
    elsewhere = tmp_path / "elsewhere"
    user_config_dir(elsewhere / "my_configs")  # passed as `--config-dir my_configs`, relative, as a user would
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"OMP_NUM_THREADS": "1", "AUDIO_THINKER_CACHE": str(tmp_path / "cache")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600, check=False)

    where = run(str(bin_dir / "python"), "-c", "import audio_thinker; print(audio_thinker.__file__)")
    assert where.stdout.startswith(str(tmp_path / "venv")), where.stdout + where.stderr  # the wheel, not the checkout
    out = elsewhere / "run"
    overrides = [*FAST, *FAST_SYNTHETIC, "trainer.max_steps=2", f"hydra.run.dir={out}", "reward=my_suite"]
    result = run(str(bin_dir / "audio-thinker"), "train", "--config-dir", "my_configs", *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {"reward/total", "reward/accuracy", "reward/my_format"} <= scalar_tags(out / "tensorboard")
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert "my_format" in (out / ".hydra" / "config.yaml").read_text()
    built = sorted(p.name for p in (tmp_path / "cache").glob("*"))
    assert not built, f"built {built}: the wheel should ship the embedded models (audio_thinker/assets/embedded)"
