"""RNGStateCallback, the rollout-boundary check and AtomicCheckpointIO, without a training run."""

from __future__ import annotations

import errno
import os
import pickle
import random
from fractions import Fraction

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from audio_thinker.callbacks.resume import RNGStateCallback
from audio_thinker.checkpoints import files
from audio_thinker.checkpoints.atomic_io import AtomicCheckpointIO
from audio_thinker.checkpoints.resume_point import resume_point


def _draws() -> list[float]:
    """One number from every generator the callback covers; the Gaussians exercise the cached second value."""
    return [
        *torch.rand(2).tolist(),
        *np.random.rand(2).tolist(),
        float(np.random.standard_normal()),
        random.random(),
        random.gauss(0, 1),
    ]


def test_rng_states_survive_a_weights_only_checkpoint_and_are_restored_at_train_start(tmp_path):
    L.seed_everything(7)
    np.random.standard_normal(), random.gauss(0, 1)  # leave a cached Gaussian in numpy and in Python
    saved = RNGStateCallback().state_dict()
    expected = _draws()
    AtomicCheckpointIO().save_checkpoint({"rng": saved}, tmp_path / "rng.ckpt")
    loaded = AtomicCheckpointIO().load_checkpoint(tmp_path / "rng.ckpt")["rng"]  # weights_only=True

    resumed = RNGStateCallback()
    resumed.load_state_dict(loaded)
    moved_on = _draws()  # loading alone does not touch the generators: setup may still consume numbers
    assert moved_on != expected
    resumed.on_train_start(None, None)
    assert _draws() == expected
    resumed.on_train_start(None, None)  # restores once, not at every later fit
    assert _draws() != expected


def test_a_rank_beyond_the_saved_ones_falls_back_to_rank_zero(caplog):
    state = RNGStateCallback().state_dict()
    expected = _draws()
    callback = RNGStateCallback()
    callback._rank = 3
    callback.load_state_dict(state)
    callback.on_train_start(None, None)
    assert _draws() == expected and "rank 3 uses rank 0's" in caplog.text


def test_a_crash_mid_write_leaves_no_checkpoint_under_the_final_name(tmp_path, monkeypatch):
    def crash(obj, file):
        file.write(b"half a checkpoint")  # some bytes reach the disk, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(files.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        AtomicCheckpointIO().save_checkpoint({"step": 1}, tmp_path / "checkpoints" / "last.ckpt")
    assert os.listdir(tmp_path / "checkpoints") == []  # neither last.ckpt nor the temporary file


def test_a_crash_mid_write_keeps_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": torch.tensor(4)}, path)
    monkeypatch.setattr(files.torch, "save", lambda obj, file: (file.write(b"\x00" * 10), 1 / 0))
    with pytest.raises(ZeroDivisionError):
        AtomicCheckpointIO().save_checkpoint({"step": torch.tensor(6)}, path)
    assert AtomicCheckpointIO().load_checkpoint(path)["step"] == 4


def test_a_full_disk_is_the_last_thing_the_error_says(tmp_path, monkeypatch):
    """torch's zip writer turns ENOSPC into "unexpected pos ..."; the error raised last names the real cause."""
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": torch.tensor(4)}, path)
    real_fdopen = os.fdopen

    def full_disk(fd, mode):
        file = real_fdopen(fd, mode)
        written = [0]

        def write(data):
            if written[0] + len(data) > 300:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written[0] += len(data)
            return type(file).write(file, data)

        file.write = write
        return file

    monkeypatch.setattr(files.os, "fdopen", full_disk)
    with pytest.raises(files.CheckpointWriteError) as err:
        AtomicCheckpointIO().save_checkpoint({"step": torch.tensor(6), "w": torch.zeros(1000)}, path)
    assert err.value.errno == errno.ENOSPC and "unexpected pos" in str(err.value.__cause__)
    assert str(err.value).startswith(f"[Errno 28] cannot write checkpoint {path}: No space left on device (ENOSPC)")
    assert "MiB free there; the previous checkpoint is kept" in str(err.value)
    monkeypatch.undo()
    assert AtomicCheckpointIO().load_checkpoint(path)["step"] == 4 and os.listdir(tmp_path) == ["last.ckpt"]


def test_a_temporary_file_left_by_a_hard_kill_is_never_taken_for_the_last_checkpoint(tmp_path):
    AtomicCheckpointIO().save_checkpoint({"step": 2}, tmp_path / "last.ckpt")
    (tmp_path / ".last.ckpt.0a1b2c3d.tmp").write_bytes(b"torn")  # what SIGKILL between write and rename leaves
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    found = ModelCheckpoint(dirpath=tmp_path)._find_last_checkpoints(trainer)
    assert found == {str(tmp_path / "last.ckpt")}


def test_files_follow_the_umask_like_a_plain_save(tmp_path):
    AtomicCheckpointIO().save_checkpoint({"step": 1}, tmp_path / "a.ckpt")
    torch.save({"step": 1}, tmp_path / "b.ckpt")
    assert (tmp_path / "a.ckpt").stat().st_mode == (tmp_path / "b.ckpt").stat().st_mode


def test_loading_defaults_to_weights_only(tmp_path):
    AtomicCheckpointIO().save_checkpoint({"ratio": Fraction(1, 3)}, tmp_path / "code.ckpt")  # not a plain type
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        AtomicCheckpointIO().load_checkpoint(tmp_path / "code.ckpt")
    assert AtomicCheckpointIO().load_checkpoint(tmp_path / "code.ckpt", weights_only=False)["ratio"] == Fraction(1, 3)


def _checkpoints(folder, *names: str) -> None:
    for age, name in enumerate(names):  # oldest first
        AtomicCheckpointIO().save_checkpoint({"step": age}, folder / name)
        os.utime(folder / name, (1000 + age, 1000 + age))


def test_stale_temporaries_of_ours_are_removed_at_start_and_nothing_else(tmp_path):
    _checkpoints(tmp_path, "step000002.ckpt")
    ours = [tmp_path / ".step000004.ckpt.0a1b2c3d.tmp", tmp_path / ".last.ckpt.deadbeef.tmp"]
    theirs = [tmp_path / ".notes.tmp", tmp_path / "step000004.ckpt.tmp", tmp_path / ".x.ckpt.NOTHEX12.tmp"]
    for path in ours + theirs:
        path.write_bytes(b"partial")
    assert resume_point([tmp_path], None) is None
    assert not any(p.exists() for p in ours) and all(p.exists() for p in theirs)
    assert (tmp_path / "step000002.ckpt").exists()


def test_last_falls_back_to_the_newest_readable_checkpoint_when_last_ckpt_is_truncated(tmp_path, caplog):
    _checkpoints(tmp_path, "step000002.ckpt", "step000004.ckpt", "last.ckpt")
    data = (tmp_path / "last.ckpt").read_bytes()
    (tmp_path / "last.ckpt").write_bytes(data[: len(data) // 2])  # a copy cut short
    assert resume_point([tmp_path], "last") == str(tmp_path / "step000004.ckpt")
    assert f"{tmp_path / 'last.ckpt'} cannot be read" in caplog.text and "resuming from" in caplog.text
    assert resume_point([tmp_path], "other.ckpt") == "other.ckpt"  # explicit paths pass through


def test_last_takes_the_checkpoint_of_the_latest_step_not_the_file_named_last(tmp_path):
    """Killed between writing step000004.ckpt and last.ckpt: last.ckpt still holds step 2, whatever its file time."""
    for name, step, mtime in (("step000002.ckpt", 2, 1000), ("step000004.ckpt", 4, 1001), ("last.ckpt", 2, 1002)):
        AtomicCheckpointIO().save_checkpoint({"global_step": step}, tmp_path / name)
        os.utime(tmp_path / name, (mtime, mtime))
    assert resume_point([tmp_path], "last") == str(tmp_path / "step000004.ckpt")
    AtomicCheckpointIO().save_checkpoint({"global_step": 4}, tmp_path / "last.ckpt")  # written next: a tie, newest
    assert resume_point([tmp_path], "last") == str(tmp_path / "last.ckpt")


def test_last_without_any_checkpoint_starts_fresh(tmp_path, caplog):
    with caplog.at_level("INFO", logger="audio_thinker.checkpoints.resume_point"):
        assert resume_point([tmp_path / "checkpoints"], "last") is None
    assert f"ckpt_path=last: no checkpoint in {tmp_path / 'checkpoints'} yet; starting a fresh run" in caplog.text


def test_loading_a_truncated_checkpoint_names_the_file_and_the_previous_one(tmp_path):
    _checkpoints(tmp_path, "step000002.ckpt", "last.ckpt")
    data = (tmp_path / "last.ckpt").read_bytes()
    (tmp_path / "last.ckpt").write_bytes(data[:-100])
    with pytest.raises(files.CheckpointReadError) as err:
        AtomicCheckpointIO().load_checkpoint(tmp_path / "last.ckpt")
    message = str(err.value)
    assert message.startswith(f"cannot read checkpoint {tmp_path / 'last.ckpt'}: it is truncated or corrupt")
    assert f"ckpt_path={tmp_path / 'step000002.ckpt'}" in message and "PytorchStreamReader" in message


def test_when_no_checkpoint_can_be_read_last_says_so(tmp_path):
    (tmp_path / "last.ckpt").write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(files.CheckpointReadError, match="no checkpoint in .* can be read"):
        resume_point([tmp_path], "last")
