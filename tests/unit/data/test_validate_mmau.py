"""`data check` on real MMAU test-mini items: usable, counted by task/difficulty/sub-category, repeats warned."""

from __future__ import annotations

import shutil

from audio_thinker.data.validate import check_dataset, data_check_main, format_report
from tests.helpers.benchmarks import EXCERPT, full_mmau_test_mini, read_items, write_placeholder_audio


def test_excerpt_is_usable_and_repeated_options_are_warnings(tmp_path, capsys):
    manifest = shutil.copy(EXCERPT, tmp_path / "mmau-test-mini.json")
    write_placeholder_audio(read_items(EXCERPT), tmp_path)
    report = check_dataset(manifest)
    assert report.ok and report.usable == 41 and report.format == "mmau"
    assert dict(report.counts["task"]) == {"music": 10, "sound": 17, "speech": 14}
    assert dict(report.counts["difficulty"]) == {"easy": 22, "medium": 10, "hard": 9}
    repeats = [i for i in report.issues if i.kind == "repeated_option"]
    assert len(repeats) == 9 and all(i.severity == "warning" for i in repeats)
    assert sum("(the gold answer)" in i.message for i in repeats) == 3  # 1.63 seconds, thirteen, and a sentence
    assert {i.severity for i in report.issues} <= {"warning", "info"}
    assert data_check_main([str(manifest)]) == 0
    out = capsys.readouterr().out
    assert "by task: music: 10, sound: 17, speech: 14" in out and "by sub-category (" in out
    assert "OK: no errors." in out


def test_full_test_mini_with_all_audio_present(tmp_path):
    path = full_mmau_test_mini()
    manifest = shutil.copy(path, tmp_path / "mmau-test-mini.json")
    write_placeholder_audio(read_items(path), tmp_path, seconds=0.05)
    report = check_dataset(manifest)
    assert report.ok and report.records == report.usable == 1000
    assert dict(report.counts["task"]) == {"music": 334, "sound": 333, "speech": 333}
    assert dict(report.counts["difficulty"]) == {"easy": 224, "medium": 540, "hard": 236}
    assert len(report.counts["sub-category"]) == 27 and sum(report.counts["sub-category"].values()) == 1000
    repeats = [i for i in report.issues if i.kind == "repeated_option"]
    # 27 items repeat an option text; in 16 of them (counted from the file) the repeated text is the gold answer.
    assert len(repeats) == 27 and sum("(the gold answer)" in i.message for i in repeats) == 16
    assert "by difficulty: easy: 224, hard: 236, medium: 540" in format_report(report)
