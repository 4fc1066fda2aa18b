"""A checkpoint is data that may have been damaged or crafted: bytes changed inside it are caught by the checksums
its zip recorded at save time, NaN weights are refused on export, and a pickle that would run code is refused
(export, eval, resume) before it runs."""

from __future__ import annotations

import os
import pickle
import zipfile

import pytest
import torch
from omegaconf import OmegaConf

from audio_thinker.checkpoints.atomic_io import AtomicCheckpointIO
from audio_thinker.checkpoints.files import CheckpointReadError, read_checkpoint
from audio_thinker.checkpoints.resume_point import resume_point
from audio_thinker.cli import main
from audio_thinker.eval.eval_policy import load_eval_policy
from tests.helpers.training import fake_run


def corrupt(path, size: int = 4000) -> str:
    """Overwrite `size` bytes inside the largest tensor member of the checkpoint `path`, the zip directory intact
    (as a bad disk or a bad copy would); returns the member's name."""
    with zipfile.ZipFile(path) as archive:
        member = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(path, "r+b") as file:
        file.seek(member.header_offset + 100)  # past the local header, inside the tensor's bytes
        file.write(b"\xff" * min(size, member.file_size - 100))
    return member.filename


def _save(path, step: int, mtime: int) -> None:
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"policy.w": torch.randn(4096)}, "global_step": step}, path)
    os.utime(path, (mtime, mtime))


def test_bytes_changed_inside_a_checkpoint_are_refused_naming_the_file_and_member(tmp_path):
    _save(tmp_path / "step000002.ckpt", 2, 1000)
    _save(tmp_path / "last.ckpt", 4, 1001)
    member = corrupt(tmp_path / "last.ckpt")
    for load in (read_checkpoint, AtomicCheckpointIO().load_checkpoint):  # export/eval, and a resume
        with pytest.raises(CheckpointReadError) as err:
            load(tmp_path / "last.ckpt")
        message = str(err.value)
        assert message.startswith(f"cannot read checkpoint {tmp_path / 'last.ckpt'}: it is truncated or corrupt")
        assert member in message and "checksum" in message
        assert f"ckpt_path={tmp_path / 'step000002.ckpt'}" in message


def test_last_passes_over_a_checkpoint_whose_bytes_changed(tmp_path, caplog):
    _save(tmp_path / "step000002.ckpt", 2, 1000)
    _save(tmp_path / "step000004.ckpt", 4, 1001)
    _save(tmp_path / "last.ckpt", 4, 1002)
    corrupt(tmp_path / "last.ckpt")
    assert resume_point([tmp_path], "last") == str(tmp_path / "step000004.ckpt")
    assert f"{tmp_path / 'last.ckpt'} cannot be read" in caplog.text and "checksum" in caplog.text
    corrupt(tmp_path / "step000004.ckpt")
    assert resume_point([tmp_path], "last") == str(tmp_path / "step000002.ckpt")


def test_export_refuses_a_damaged_checkpoint_and_nan_weights_and_writes_nothing(tmp_path):
    _, ckpt = fake_run(tmp_path, [])
    checkpoint = torch.load(ckpt, weights_only=True)
    corrupt(ckpt)
    with pytest.raises(CheckpointReadError, match="it is truncated or corrupt"):
        main(["export", str(ckpt), "--out", str(tmp_path / "out")])
    name = next(iter(checkpoint["state_dict"]))
    checkpoint["state_dict"][name][0] = float("nan")  # saved that way: its checksums match
    torch.save(checkpoint, ckpt)
    with pytest.raises(CheckpointReadError, match=rf"{ckpt}: 1 weight tensor\(s\) hold NaN or inf \({name[7:]}\)"):
        main(["export", str(ckpt), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


class _Payload:
    """Unpickled with weights_only=False, it creates the file `victim`."""

    def __init__(self, victim) -> None:
        self.victim = str(victim)

    def __reduce__(self):
        return open, (self.victim, "w")


def test_a_checkpoint_that_would_run_code_is_refused_by_export_eval_and_resume(tmp_path):
    """Round one (kept): checkpoints load with weights_only=True (also tests/unit/callbacks/test_resume.py's
    test_loading_defaults_to_weights_only)."""
    _, ckpt = fake_run(tmp_path, [])
    victim = tmp_path / "victim"
    torch.save({"state_dict": {}, "hook": _Payload(victim)}, ckpt)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        main(["export", str(ckpt), "--out", str(tmp_path / "out")])
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_eval_policy(OmegaConf.create({}), ckpt_path=str(ckpt))  # the model from the run's own config
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        AtomicCheckpointIO().load_checkpoint(ckpt)
    assert not victim.exists()
