"""User data end to end: make-data writes a manifest, a corrupt file is skipped and counted during training."""

from __future__ import annotations

import pytest

from audio_thinker.cli import main
from audio_thinker.train import train
from tests.tb import read_scalars


@pytest.fixture
def manifest_dir(tmp_path):
    """A 4-train / 2-val synthetic dataset written as WAV files + JSONL manifests."""
    out = tmp_path / "data"
    with pytest.raises(SystemExit) as done:
        main(["make-data", str(out), "--train-size", "4", "--val-size", "2", "--seed", "3"])
    assert done.value.code == 0
    return out


def _manifest_overrides(manifest_dir) -> list[str]:
    return ["data=manifest", f"data.train.path={manifest_dir / 'train.jsonl'}",
            f"data.val.path={manifest_dir / 'val.jsonl'}"]  # fmt: skip


def test_data_check_command_flags_a_corrupt_file(manifest_dir, capsys):
    first_wav = sorted((manifest_dir / "audio").rglob("*.wav"))[0]
    first_wav.write_bytes(b"RIFF\x00\x00")  # a truncated header
    with pytest.raises(SystemExit) as done:
        main(["data", "check", str(manifest_dir / "train.jsonl")])
    report = capsys.readouterr().out
    assert done.value.code == 1
    lines = (manifest_dir / "train.jsonl").read_text().splitlines()
    line_no = next(i for i, line in enumerate(lines, 1) if first_wav.name in line)
    assert f"train.jsonl:{line_no}: [corrupt_audio]" in report and first_wav.name in report


def test_training_skips_and_counts_a_corrupt_example(manifest_dir, train_cfg, tmp_path):
    wav = sorted((manifest_dir / "audio").rglob("*.wav"))[0]
    wav.write_bytes(b"not audio at all")
    cfg = train_cfg([
        *_manifest_overrides(manifest_dir),
        "data.on_error=skip", "trainer.max_steps=2", "callbacks.model_checkpoint=null",
    ])  # fmt: skip
    train(cfg)
    skipped = read_scalars(tmp_path / "tensorboard", "data/skipped")
    assert skipped and skipped[-1][1] == 1.0  # 4 training examples over 2 steps: the bad one was seen once


def test_training_with_on_error_raise_names_the_file(manifest_dir, train_cfg):
    wav = sorted((manifest_dir / "audio").rglob("*.wav"))[0]
    wav.write_bytes(b"not audio at all")
    cfg = train_cfg([
        *_manifest_overrides(manifest_dir),
        "trainer.max_steps=2", "callbacks.model_checkpoint=null",
    ])  # fmt: skip
    with pytest.raises(Exception, match=wav.name):
        train(cfg)
