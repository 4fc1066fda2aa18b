"""User data end to end: make-data writes a manifest, a corrupt file is skipped and counted during training."""

from __future__ import annotations

import json
import logging

import pytest

from audio_thinker.cli import main
from audio_thinker.data.errors import DataError
from audio_thinker.data.skips import NoUsableDataError
from audio_thinker.module import NothingTrainedError
from audio_thinker.train import train
from tests.helpers.tb import read_scalars


@pytest.fixture
def manifest_dir(tmp_path):
    """A 4-train / 2-val synthetic dataset written as WAV files + JSONL manifests."""
    out = tmp_path / "data"
    with pytest.raises(SystemExit) as done:
        main(["make-data", str(out), "--train-size", "4", "--val-size", "2", "--seed", "3"])
    assert done.value.code == 0
    return out


def _manifest_overrides(manifest_dir) -> list[str]:
    return [
        "data=manifest",
        f"data.train.path={manifest_dir / 'train.jsonl'}",
        f"data.val.path={manifest_dir / 'val.jsonl'}",
    ]


def test_data_check_command_flags_a_corrupt_file(manifest_dir, capsys):
    first_wav = sorted((manifest_dir / "audio").rglob("*.wav"))[0]
    first_wav.write_bytes(b"RIFF\x00\x00")  # a truncated header
    with pytest.raises(SystemExit) as done:
        main(["data", "check", str(manifest_dir / "train.jsonl")])
    report = capsys.readouterr().out
    assert done.value.code == 1
    lines = (manifest_dir / "train.jsonl").read_text().splitlines()
    line_no = next(i for i, line in enumerate(lines, 1) if first_wav.name in line)
    example_id = json.loads(lines[line_no - 1])["id"]
    assert f"train.jsonl:{line_no} (id {example_id!r}): [corrupt_audio]" in report and first_wav.name in report


def test_training_skips_and_counts_a_corrupt_example(manifest_dir, train_cfg, tmp_path):
    wav = sorted((manifest_dir / "audio").rglob("*.wav"))[0]
    wav.write_bytes(b"not audio at all")
    cfg = train_cfg(
        [
            *_manifest_overrides(manifest_dir),
            "data.on_error=skip",
            "trainer.max_steps=2",
            "callbacks.model_checkpoint=null",
        ]
    )
    train(cfg)
    skipped = read_scalars(tmp_path / "tensorboard", "data/skipped")
    assert skipped and skipped[-1][1] == 1.0  # 4 training examples over 2 steps: the bad one was seen once


def test_training_with_on_error_raise_names_the_file(manifest_dir, train_cfg):
    wav = sorted((manifest_dir / "audio").rglob("*.wav"))[0]
    wav.write_bytes(b"not audio at all")
    cfg = train_cfg(
        [
            *_manifest_overrides(manifest_dir),
            "trainer.max_steps=2",
            "callbacks.model_checkpoint=null",
        ]
    )
    with pytest.raises(Exception, match=wav.name):
        train(cfg)


def _break(manifest_dir, count: int) -> list:
    """Overwrite the first `count` training WAVs with junk; their paths."""
    wavs = sorted((manifest_dir / "audio" / "train").glob("*.wav"))[:count]
    for wav in wavs:
        wav.write_bytes(b"not audio at all")
    return wavs


def test_a_manifest_with_nothing_usable_stops_instead_of_training_on_nothing(manifest_dir, train_cfg, tmp_path):
    _break(manifest_dir, 4)
    cfg = train_cfg([*_manifest_overrides(manifest_dir), "data.on_error=skip", "trainer.max_steps=10"])
    with pytest.raises(NoUsableDataError, match=r"3 consecutive step\(s\) had no usable example") as err:
        train(cfg)
    assert "4 distinct example(s) skipped (corrupt_audio: 4)" in str(err.value)
    assert not (tmp_path / "export").exists()  # no untrained model is exported as if it had trained


def test_a_run_too_short_to_stop_on_empty_steps_still_fails_when_no_step_trained(manifest_dir, train_cfg, tmp_path):
    """Issue 26: with trainer.max_steps=2 the empty-step rule (3) never fires; the run must not exit 0 and export."""
    _break(manifest_dir, 4)
    cfg = train_cfg([*_manifest_overrides(manifest_dir), "data.on_error=skip", "trainer.max_steps=2"])
    with pytest.raises(NothingTrainedError, match=r"none of the 2 optimizer step\(s\) changed the weights"):
        train(cfg)
    assert not (tmp_path / "export").exists()


def test_skips_are_distinct_by_kind_across_epochs_and_summed_up_at_the_end(manifest_dir, train_cfg, tmp_path, caplog):
    _break(manifest_dir, 1)
    lines = (manifest_dir / "train.jsonl").read_text().splitlines()
    bad_row = {**json.loads(lines[1]), "answer": "not an option"}  # dropped when the manifest is read
    (manifest_dir / "train.jsonl").write_text("\n".join([lines[0], json.dumps(bad_row), *lines[2:]]) + "\n")
    cfg = train_cfg(
        [
            *_manifest_overrides(manifest_dir),
            "data.on_error=skip",
            "trainer.max_steps=6",
            "callbacks.model_checkpoint=null",
        ]
    )
    with caplog.at_level(logging.INFO, logger="audio_thinker"):
        train(cfg)  # 3 usable rows in batches of 2: the broken file is drawn in each of the 3 epochs
    log_dir = tmp_path / "tensorboard"
    assert [v for _, v in read_scalars(log_dir, "data/skipped")] == [2.0] * 6  # not 2, 3, 4 ...
    assert read_scalars(log_dir, "data/skipped/corrupt_audio")[-1][1] == 1.0
    assert read_scalars(log_dir, "data/skipped/answer_not_in_choices")[-1][1] == 1.0
    assert "data: 2 distinct example(s) skipped (answer_not_in_choices: 1, corrupt_audio: 1), 1 of them dropped" in (
        caplog.text
    )


def test_a_question_too_long_for_the_context_is_named_at_load(manifest_dir, train_cfg, caplog):
    lines = (manifest_dir / "train.jsonl").read_text().splitlines()
    huge = {**json.loads(lines[2]), "question": "Which tone? " + "very " * 2000}
    (manifest_dir / "train.jsonl").write_text("\n".join([*lines[:2], json.dumps(huge), *lines[3:]]) + "\n")
    overrides = [*_manifest_overrides(manifest_dir), "trainer.max_steps=1", "callbacks.model_checkpoint=null"]
    with pytest.raises(DataError, match=rf"train.jsonl:3 \(id '{huge['id']}'\): the prompt is \d+ tokens"):
        train(train_cfg(overrides))
    train(train_cfg([*overrides, "data.on_error=skip"]))  # under skip it is dropped, counted and named
    assert f"skipping example '{huge['id']}'" in caplog.text and "model's context is 1024" in caplog.text
