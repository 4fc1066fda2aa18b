"""`data check`: one manifest with every kind of problem; each is reported with its line and reason."""

from __future__ import annotations

import numpy as np
import pytest

from audio_thinker.data.validate import check_dataset, data_check_main, duration_histogram, format_report
from tests.helpers.data import record, sine, write_audio, write_jsonl

# line -> (severity, kind, words the message must contain); lines not listed must produce no issue.
EXPECTED = {
    2: ("error", "missing_file", ["missing.wav", "not found"]),
    3: ("error", "empty_audio", ["empty.wav", "0 bytes"]),
    4: ("error", "empty_audio", ["zero.wav", "zero samples"]),
    5: ("error", "corrupt_audio", ["corrupt.wav", "header is corrupt or truncated"]),
    6: ("error", "nonfinite_samples", ["nan.wav", "NaN/inf samples"]),
    7: ("warning", "silence", ["silent.wav", "silence only"]),
    8: ("info", "resample", ["rate44k.wav", "44100 Hz, will be resampled to 16000 Hz"]),
    9: ("info", "multichannel", ["stereo.wav", "2 channels, will be averaged to mono"]),
    10: ("error", "malformed_json", ["malformed JSON line"]),
    11: ("error", "missing_field", ["missing required field 'answer'"]),
    12: ("error", "answer_not_in_choices", ["answer 'medium' is not among the choices"]),
    13: ("error", "duplicate_id", ["duplicate id 'good'", "first used at"]),
    14: ("warning", "truncated_file", ["half.wav", "header declares"]),
    15: ("warning", "duration_mismatch", ["'duration' says 9.00 s but the file lasts 1.00 s"]),
    16: ("info", "truncate", ["long.wav", "will be cut to the first 30 s"]),
}


@pytest.fixture
def bad_manifest(tmp_path):
    """Line N of this manifest has the problem EXPECTED[N]; line 1 and line 17 are fine."""
    tone = sine(440.0, 1.0, 16_000)
    write_audio(tmp_path / "good.wav", tone)
    (tmp_path / "empty.wav").write_bytes(b"")
    write_audio(tmp_path / "zero.wav", np.zeros(0, np.float32))
    (tmp_path / "corrupt.wav").write_bytes(b"definitely not a wav file" * 8)
    nan = tone.copy()
    nan[5] = np.nan
    write_audio(tmp_path / "nan.wav", nan, subtype="FLOAT")
    write_audio(tmp_path / "silent.wav", np.zeros(16_000, np.float32))
    write_audio(tmp_path / "rate44k.wav", sine(440.0, 1.0, 44_100), 44_100)
    write_audio(tmp_path / "stereo.wav", np.stack([tone, tone], axis=1))
    data = write_audio(tmp_path / "full.wav", tone).read_bytes()
    (tmp_path / "half.wav").write_bytes(data[: len(data) // 2])
    write_audio(tmp_path / "long.wav", np.full(31 * 16_000, 0.1, np.float32))
    no_answer = {k: v for k, v in record("no-answer", "good.wav").items() if k != "answer"}
    return write_jsonl(
        tmp_path / "train.jsonl",
        [
            record("good", "good.wav"),
            record("missing", "missing.wav"),
            record("empty", "empty.wav"),
            record("zero", "zero.wav"),
            record("corrupt", "corrupt.wav"),
            record("nan", "nan.wav"),
            record("silent", "silent.wav"),
            record("44k", "rate44k.wav"),
            record("stereo", "stereo.wav"),
            '{"id": "broken", "audio": ',
            no_answer,
            record("wrong", "good.wav", answer="medium"),
            record("good", "good.wav"),
            record("half", "half.wav"),
            record("mismatch", "good.wav", duration=9.0),
            record("long", "long.wav"),
            record("also-good", "good.wav", duration=1.0),
        ],
    )


def test_every_problem_is_reported_with_its_line_and_reason(bad_manifest):
    report = check_dataset(bad_manifest, target_rate=16_000, max_audio_seconds=30)
    by_line = {}
    for issue in report.issues:
        by_line.setdefault(int(issue.where.rsplit(":", 1)[1]), []).append(issue)
    assert sorted(by_line) == sorted(EXPECTED)  # nothing missed, nothing spurious (lines 1 and 17 are clean)
    for line, (severity, kind, words) in EXPECTED.items():
        (issue,) = by_line[line]
        assert (issue.severity, issue.kind) == (severity, kind), line
        for word in words:
            assert word in issue.message, (line, issue.message)
    assert report.records == 17
    assert report.usable == 17 - sum(sev == "error" for sev, _, _ in EXPECTED.values())
    assert (report.count("error"), report.count("warning"), report.count("info")) == (9, 3, 3)
    assert not report.ok
    # usable: good, silent, 44k, stereo, half (0.5 s), mismatch, long (capped at 30 s), also-good
    assert report.total_hours * 3600 == pytest.approx(1 + 1 + 1 + 1 + 0.5 + 1 + 30 + 1, abs=0.01)


# The example id of each line (line 10 is malformed JSON: no id can be read).
IDS = {
    2: "missing",
    3: "empty",
    4: "zero",
    5: "corrupt",
    6: "nan",
    7: "silent",
    8: "44k",
    9: "stereo",
    11: "no-answer",
    12: "wrong",
    13: "good",
    14: "half",
    15: "mismatch",
    16: "long",
}


def test_printed_report_lists_every_error_and_warning_with_its_id_and_exit_code_is_1(bad_manifest, capsys):
    assert data_check_main([str(bad_manifest)]) == 1
    out = capsys.readouterr().out
    for line, (severity, kind, _) in EXPECTED.items():
        if severity != "info":
            place = f"train.jsonl:{line} (id {IDS[line]!r})" if line in IDS else f"train.jsonl:{line}"
            assert f"{place}: [{kind}]" in out
    assert "records: 17   usable examples: 8   errors: 9   warnings: 3   infos: 3" in out
    assert (
        "[resample] 1 examples, e.g." in out
        and "train.jsonl:12 (id 'wrong'): [answer_not_in_choices] answer 'medium' is not among" in out
        and "FAILED: 9 errors." in out
    )
    assert "duration histogram:" in out and "30-60 s |" in out
    assert "train.jsonl:8 (id '44k'): [resample]" in format_report(check_dataset(bad_manifest), verbose=True)


def test_a_clean_dataset_passes_and_shared_clips_are_counted_once(tmp_path, capsys):
    write_audio(tmp_path / "clip.wav", sine(330.0, 2.0, 16_000))
    path = write_jsonl(tmp_path / "ok.jsonl", [record("q1", "clip.wav"), record("q2", "clip.wav", duration=2.0)])
    report = check_dataset(path)
    assert report.ok and report.issues == [] and report.usable == 2 and report.format == "jsonl"
    assert (report.total_hours * 3600, report.unique_audio_seconds) == pytest.approx((4.0, 2.0))
    assert data_check_main([str(path)]) == 0
    assert "OK: no errors." in capsys.readouterr().out


def test_a_missing_manifest_is_a_reported_error_not_a_crash(tmp_path, capsys):
    report = check_dataset(tmp_path / "nope.jsonl")
    assert [i.kind for i in report.issues] == ["missing_manifest"] and not report.ok
    assert data_check_main([str(tmp_path / "nope.jsonl")]) == 1
    assert "manifest not found" in capsys.readouterr().out


def test_duration_histogram_buckets():
    text = duration_histogram([0.5, 1.5, 1.7, 12.0])
    rows = {row.split("|")[0].strip(): int(row.split()[-1]) for row in text.splitlines()}
    assert rows == {"0-1 s": 1, "1-2 s": 2, "2-5 s": 0, "5-10 s": 0, "10-30 s": 1}  # empty long buckets trimmed
    assert "#" * 40 in text  # the fullest bucket gets the full bar


@pytest.mark.parametrize("content", ["", "\n  \n\n"])
def test_an_empty_or_blank_manifest_is_an_error(tmp_path, capsys, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    report = check_dataset(path)
    assert [i.kind for i in report.issues] == ["no_usable_examples"] and not report.ok
    assert data_check_main([str(path)]) == 1
    out = capsys.readouterr().out
    assert "no usable examples (the file is empty or blank)" in out and "OK" not in out


def test_a_manifest_whose_every_row_is_bad_says_so_too(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [record("a", "nowhere.wav")])
    assert [i.kind for i in check_dataset(path).issues] == ["missing_file", "no_usable_examples"]


def test_a_clip_under_the_minimum_duration_is_a_warning(tmp_path):
    write_audio(tmp_path / "blip.wav", np.full(1, 0.5, np.float32))
    (issue,) = check_dataset(write_jsonl(tmp_path / "m.jsonl", [record("blip", "blip.wav")])).issues
    assert (issue.severity, issue.kind, issue.example_id) == ("warning", "too_short", "blip")
    assert "lasts only 0.0001 s (under 0.1 s)" in issue.message


def test_with_a_model_a_prompt_too_long_for_its_context_is_an_error_naming_the_example(tmp_path, capsys):
    write_audio(tmp_path / "tone.wav", sine(440.0, 1.0, 16_000))
    huge = record("huge", "tone.wav", question="Which tone? " + "very " * 2000)  # ~10 KB: over 1024 tokens
    path = write_jsonl(tmp_path / "m.jsonl", [record("fine", "tone.wav"), huge])
    assert data_check_main([str(path), "--model", "tiny-qwen2-audio", "--max-new-tokens", "48"]) == 1
    out = capsys.readouterr().out
    assert "m.jsonl:2 (id 'huge'): [prompt_too_long] the prompt is" in out
    assert "but the model's context is 1024" in out and "usable examples: 1" in out
    assert data_check_main([str(path)]) == 0  # without --model, lengths are not checked (and it says so)
    assert "pass --model" in capsys.readouterr().err


def test_the_command_shows_a_progress_bar_over_every_record(tmp_path, monkeypatch):
    import audio_thinker.data.validate as validate

    bars = []
    monkeypatch.setattr(validate, "tqdm", lambda items, **options: bars.append((len(items), options)) or items)
    write_audio(tmp_path / "tone.wav", sine(440.0, 1.0, 16_000))
    path = write_jsonl(tmp_path / "m.jsonl", [record(f"q{i}", "tone.wav") for i in range(3)])
    assert data_check_main([str(path)]) == 0
    ((count, options),) = bars
    assert count == 3 and options["disable"] is False and options["delay"] == 2  # shown once a check takes > 2 s
