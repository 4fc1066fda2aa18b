"""SkipLedger: distinct skipped examples by kind, the stop rules, the summary and resume."""

from __future__ import annotations

import pytest
import torch

from audio_thinker.data.datamodule import AudioQADataModule
from audio_thinker.data.datasets import ManifestDataset
from audio_thinker.data.errors import SkippedExample
from audio_thinker.data.skips import NoUsableDataError, SkipLedger
from tests.helpers.data import record, sine, write_audio, write_jsonl


def bad(line: int, kind: str = "corrupt_audio") -> SkippedExample:
    return SkippedExample(f"id{line}", f"m.jsonl:{line}", "cannot decode", kind)


def test_a_bad_file_met_every_epoch_counts_once_and_kinds_are_separate():
    ledger = SkipLedger(max_skip_fraction=1.0)
    for _epoch in range(3):
        ledger.record(kept=2, skipped=[bad(3), bad(7, "missing_file")])
    assert ledger.metrics() == {
        "data/skipped": 2.0,
        "data/skipped/corrupt_audio": 1.0,
        "data/skipped/missing_file": 1.0,
    }
    assert (ledger.draws, ledger.skipped_draws) == (12, 6)
    assert ledger.summary() == (
        "2 distinct example(s) skipped (corrupt_audio: 1, missing_file: 1); 6 of 12 draws skipped"
    )


def test_consecutive_empty_steps_stop_the_run_and_a_usable_step_resets_the_count():
    ledger = SkipLedger(max_empty_steps=2, min_draws=1000)
    ledger.record(0, [bad(1)])
    ledger.check()  # one empty step: still below the limit
    ledger.record(1, [])
    ledger.record(0, [bad(2)])
    ledger.check()  # the count restarted after the usable step
    ledger.record(0, [bad(1)])
    with pytest.raises(NoUsableDataError, match=r"2 consecutive step\(s\) had no usable example") as err:
        ledger.check()
    assert "m.jsonl:1: cannot decode" in str(err.value) and "data check" in str(err.value)


def test_the_skipped_share_combines_records_dropped_at_load_and_skipped_draws():
    # 10 records, 2 dropped at load (r = 0.2); then 3 of 10 draws skipped (d = 0.3): 1 - 0.8 * 0.7 = 0.44.
    ledger = SkipLedger(max_skip_fraction=0.4, records=10, min_draws=10)
    ledger.record_load([bad(1, "missing_field"), bad(2, "missing_field")])
    assert ledger.skipped_share == pytest.approx(0.2)
    ledger.record(7, [bad(3), bad(4), bad(5)])
    assert ledger.skipped_share == pytest.approx(0.44)
    with pytest.raises(NoUsableDataError, match="about 44% of the training data cannot be used"):
        ledger.check()


def test_draws_are_judged_only_after_min_draws():
    ledger = SkipLedger(max_skip_fraction=0.5, min_draws=4)
    ledger.record(0, [bad(1)])
    ledger.record(1, [bad(2)])  # 2 of 3 skipped, but only 3 draws
    assert ledger.skipped_share == 0.0
    ledger.record(0, [bad(3)])
    assert ledger.skipped_share == pytest.approx(0.75)
    with pytest.raises(NoUsableDataError):
        ledger.check()


def test_any_rank_stopping_stops_every_rank():
    with pytest.raises(NoUsableDataError, match="another rank"):
        SkipLedger().check(any_rank=lambda stop: True)  # this rank is fine, another is not


def test_state_round_trip_keeps_distinct_counts_across_a_resume():
    ledger = SkipLedger(records=5)
    ledger.record_load([bad(1, "missing_field")])
    ledger.record(3, [bad(2)])
    state = ledger.state_dict()
    torch.save(state, buffer := __import__("io").BytesIO())
    buffer.seek(0)
    resumed = SkipLedger(records=5)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))  # plain values only
    resumed.record(3, [bad(2)])  # seen before the kill: still one example
    assert resumed.metrics()["data/skipped"] == 2.0 and resumed.draws == 8


def test_limits_are_validated_with_their_keys():
    with pytest.raises(ValueError, match="data.max_skip_fraction"):
        SkipLedger(max_skip_fraction=1.5)
    with pytest.raises(ValueError, match="data.max_empty_steps"):
        SkipLedger(max_empty_steps=0)


@pytest.fixture
def half_bad_manifest(tmp_path):
    """Four records: two parse, two lack a field (dropped at load)."""
    write_audio(tmp_path / "tone.wav", sine(440.0, 0.5, 16_000))
    rows = [record("a", "tone.wav"), record("b", "tone.wav"), {"id": "c", "audio": "tone.wav"}, {"id": "d"}]
    return write_jsonl(tmp_path / "m.jsonl", rows)


def test_the_datamodule_ledger_counts_records_dropped_at_load(half_bad_manifest):
    dataset = ManifestDataset(half_bad_manifest, on_error="skip")
    ledger = AudioQADataModule(dataset, on_error="skip", max_skip_fraction=0.6).skip_ledger()
    assert ledger.metrics() == {"data/skipped": 2.0, "data/skipped/missing_field": 2.0}
    assert ledger.records == 4 and ledger.skipped_share == pytest.approx(0.5)


def test_a_manifest_mostly_dropped_at_load_stops_before_training(half_bad_manifest):
    with pytest.raises(NoUsableDataError, match="about 50% of the training data cannot be used"):
        AudioQADataModule(ManifestDataset(half_bad_manifest, on_error="skip"), on_error="skip", max_skip_fraction=0.4)
