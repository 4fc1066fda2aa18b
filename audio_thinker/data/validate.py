"""`audio-thinker data check`: read a whole manifest and every audio file, and report every problem found.

Severities: "error" = the example cannot be used (training with `on_error=raise` would stop on it);
"warning" = usable but probably not what you meant (silence, a truncated WAV, a wrong declared duration);
"info" = handled automatically (resampled, channels averaged, clip truncated to the length cap).

Memory stays bounded on any manifest size: each file is scanned block by block and only its measurements are
kept (`audio.inspect_audio`), and a row over the size limits is refused unread (`data.limits`). A progress bar
shows on checks that take more than two seconds (on a terminal).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from audio_thinker.data.audio import MIN_AUDIO_SECONDS, AudioInfo, inspect_audio
from audio_thinker.data.errors import AudioLoadError, DataFormatError, without_location
from audio_thinker.data.limits import MAX_ROW_BYTES, MAX_TEXT_CHARS
from audio_thinker.data.manifest_formats import FORMATS, read_records
from audio_thinker.format.prompts import TEMPLATES

if TYPE_CHECKING:
    from audio_thinker.data.prompt_length import PromptBudget

BREAKDOWNS = ("task", "difficulty", "sub-category")  # usable examples are counted by each (when present)
# Fixed, readable bucket edges (seconds) rather than equal-width bins: durations span orders of magnitude.
HISTOGRAM_EDGES = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True)
class Issue:
    """One problem: how bad, where (file:line), which example, a reason code and a readable message."""

    severity: str
    where: str
    kind: str
    message: str
    example_id: str | None = None


@dataclass
class Report:
    """What `check_dataset` found: counts, durations of usable examples, and every issue in file order."""

    path: Path
    format: str
    records: int = 0
    usable: int = 0
    durations: list[float] = field(default_factory=list)
    unique_audio_seconds: float = 0.0
    issues: list[Issue] = field(default_factory=list)
    counts: dict[str, Counter] = field(default_factory=lambda: {key: Counter() for key in BREAKDOWNS})

    def count(self, severity: str) -> int:
        """Number of issues of `severity`."""
        return sum(issue.severity == severity for issue in self.issues)

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings and infos do not block training)."""
        return self.count("error") == 0

    @property
    def total_hours(self) -> float:
        """Audio hours over usable examples (a clip shared by several questions counts once per question)."""
        return sum(self.durations) / 3600


def check_dataset(
    path: str | Path,
    format: str = "auto",
    audio_root: str | Path | None = None,
    target_rate: int = 16_000,
    max_audio_seconds: float | None = 30.0,
    silence_db: float = -60.0,
    budget: PromptBudget | None = None,
    progress: bool = False,
    max_row_bytes: int | None = MAX_ROW_BYTES,
    max_text_chars: int | None = MAX_TEXT_CHARS,
) -> Report:
    """Validate every record and audio file of the manifest at `path`; never stops at the first problem.

    With a `budget` (the model's context), every prompt is checked to fit; `progress` shows a progress bar.
    A row over `max_row_bytes` or with a text over `max_text_chars` is an error (`data.limits`).
    """
    report = Report(Path(path), format)
    audio_cache: dict[str, AudioInfo | AudioLoadError] = {}  # questions often share a clip: scan it once
    try:
        records = list(read_records(path, format, audio_root, max_row_bytes, max_text_chars))
    except DataFormatError as err:  # file-level: missing manifest, unknown format
        report.issues.append(Issue("error", str(path), err.kind, str(err)))
        return report
    for record in tqdm(records, desc="data check", unit="record", delay=2, disable=not progress, file=sys.stderr):
        report.records += 1
        report.format = record.format or report.format
        if record.error is not None:
            report.issues.append(
                Issue("error", str(record.where), record.error.kind, str(record.error), record.record_id)
            )
            continue
        example, where = record.example, str(record.where)
        if example.choices and len(set(example.choices)) < len(example.choices):
            report.issues.append(_repeated_options(example, where))
        audio_path = example.meta["audio_path"]
        if audio_path not in audio_cache:
            audio_cache[audio_path] = _inspect(audio_path)
        info = audio_cache[audio_path]
        if isinstance(info, AudioLoadError):
            report.issues.append(Issue("error", where, info.kind, str(info), example.id))
            continue
        seconds = min(info.seconds, max_audio_seconds or info.seconds)
        too_long = budget.problem(example, budget.text_tokens([example])[0], seconds) if budget else None
        if too_long is not None:
            report.issues.append(Issue("error", where, too_long.kind, str(too_long), example.id))
            continue
        report.usable += 1
        for key in BREAKDOWNS:
            value = example.meta.get(key) if key == "sub-category" else getattr(example, key)
            if value is not None:
                report.counts[key][str(value)] += 1
        report.durations.append(seconds)
        report.issues += _audio_notes(info, example.meta, where, example.id, target_rate, max_audio_seconds, silence_db)
    if report.usable == 0:
        read = f"{report.records} records" if report.records else "the file is empty or blank"
        report.issues.append(
            Issue(
                "error",
                str(path),
                "no_usable_examples",
                f"{path}: no usable examples ({read}); "
                "training needs at least one. Add examples or fix the errors above.",
            )
        )
    report.unique_audio_seconds = sum(info.seconds for info in audio_cache.values() if isinstance(info, AudioInfo))
    return report


def _repeated_options(example, where: str) -> Issue:
    """The warning for an item that lists an option text twice (usable: it is graded by option text)."""
    repeated = sorted({c for c in example.choices if example.choices.count(c) > 1})
    gold = " (the gold answer)" if example.answer in repeated else ""
    return Issue(
        "warning",
        where,
        "repeated_option",
        f"options repeat the text {repeated}{gold}; the item is used and graded by option text, so a letter for "
        "either copy counts the same.",
        example.id,
    )


def _inspect(audio_path: str) -> AudioInfo | AudioLoadError:
    """The file's measurements, or the error that says why it cannot be used."""
    try:
        return inspect_audio(audio_path)
    except AudioLoadError as err:
        return err


def _audio_notes(
    info: AudioInfo,
    meta: dict,
    where: str,
    example_id: str,
    target_rate: int,
    max_seconds: float | None,
    silence_db: float,
) -> list[Issue]:
    """Warnings and infos about a file that decodes."""
    path, notes = meta["audio_path"], []
    if info.declared_bytes is not None:
        notes.append(
            Issue(
                "warning",
                where,
                "truncated_file",
                f"{path}: the WAV header declares {info.declared_bytes} bytes but the file is shorter (an interrupted "
                f"copy?); only the {info.seconds:.2f} s present will be used. Re-copy the file.",
                example_id,
            )
        )
    if info.seconds < MIN_AUDIO_SECONDS:
        notes.append(
            Issue(
                "warning",
                where,
                "too_short",
                f"{path}: lasts only {info.seconds:.4f} s (under {MIN_AUDIO_SECONDS:g} s): there is next to nothing to "
                "hear. Check the file.",
                example_id,
            )
        )
    if info.peak_db < silence_db:
        notes.append(
            Issue(
                "warning",
                where,
                "silence",
                f"{path}: silence only (peak {info.peak_db:.1f} dBFS < {silence_db:.0f} dBFS); the question "
                "cannot be answered by listening. Check the file.",
                example_id,
            )
        )
    declared = meta.get("duration")
    if declared is not None and abs(declared - info.seconds) > max(0.1, 0.02 * info.seconds):
        notes.append(
            Issue(
                "warning",
                where,
                "duration_mismatch",
                f"{path}: 'duration' says {declared:.2f} s but the file lasts {info.seconds:.2f} s; is it the right "
                "file?",
                example_id,
            )
        )
    if info.sampling_rate != target_rate:
        notes.append(
            Issue(
                "info",
                where,
                "resample",
                f"{path}: {info.sampling_rate} Hz, will be resampled to {target_rate} Hz.",
                example_id,
            )
        )
    if info.channels > 1:
        notes.append(
            Issue(
                "info",
                where,
                "multichannel",
                f"{path}: {info.channels} channels, will be averaged to mono.",
                example_id,
            )
        )
    if max_seconds is not None and info.seconds > max_seconds:
        notes.append(
            Issue(
                "info",
                where,
                "truncate",
                f"{path}: {info.seconds:.1f} s, will be cut to the first {max_seconds:g} s (max_audio_seconds).",
                example_id,
            )
        )
    return notes


def duration_histogram(durations: Sequence[float], width: int = 40) -> str:
    """A text histogram of clip durations over `HISTOGRAM_EDGES`."""
    edges = [*HISTOGRAM_EDGES, float("inf")]
    counts = [sum(lo <= d < hi for d in durations) for lo, hi in zip(edges, edges[1:], strict=False)]
    last = max((i for i, n in enumerate(counts) if n), default=0)  # no rows of empty long-clip buckets
    edges, counts = edges[: last + 2], counts[: last + 1]
    peak = max(counts, default=0) or 1
    lines = []
    for lo, hi, n in zip(edges, edges[1:], counts, strict=False):
        label = f"{lo:g}-{hi:g} s" if hi != float("inf") else f">= {lo:g} s"
        lines.append(f"  {label:>12} | {'#' * round(width * n / peak):<{width}} {n}")
    return "\n".join(lines)


def format_report(report: Report, verbose: bool = False) -> str:
    """The report as text: summary, histogram, every error and warning; infos summarised unless `verbose`."""
    lines = [
        f"{report.path} (format: {report.format})",
        f"  records: {report.records}   usable examples: {report.usable}   "
        f"errors: {report.count('error')}   warnings: {report.count('warning')}   infos: {report.count('info')}",
        f"  total audio: {report.total_hours:.3f} h over usable examples "
        f"({report.unique_audio_seconds / 3600:.3f} h in unique files)",
        "  duration histogram:",
        duration_histogram(report.durations),
    ]
    lines += _breakdown_lines(report.counts)
    for severity in ("error", "warning"):
        issues = [i for i in report.issues if i.severity == severity]
        if issues:
            lines.append(f"{severity}s ({len(issues)}):")
            lines += [f"  {_place(i)}: [{i.kind}] {_without_where(i)}" for i in issues]
    infos = [i for i in report.issues if i.severity == "info"]
    if infos and verbose:
        lines.append(f"infos ({len(infos)}):")
        lines += [f"  {_place(i)}: [{i.kind}] {_without_where(i)}" for i in infos]
    elif infos:
        lines.append(f"infos ({len(infos)}, handled automatically; --verbose lists them):")
        for kind, n in sorted(Counter(i.kind for i in infos).items()):
            first = next(i for i in infos if i.kind == kind)
            lines.append(f"  [{kind}] {n} examples, e.g. {_place(first)}: {_without_where(first)}")
    lines.append("OK: no errors." if report.ok else f"FAILED: {report.count('error')} errors.")
    return "\n".join(lines)


def _breakdown_lines(counts: dict[str, Counter]) -> list[str]:
    """'  by task: music 334, sound 333' lines; a breakdown with many values gets one value a line."""
    lines = []
    for key, counter in counts.items():
        if not counter:
            continue
        items = [f"{name}: {n}" for name, n in sorted(counter.items())]
        if len(items) <= 6:
            lines.append(f"  by {key}: " + ", ".join(items))
        else:
            lines += [f"  by {key} ({len(items)}):", *(f"    {item}" for item in items)]
    return lines


def _place(issue: Issue) -> str:
    """Where an issue is, with its example id when it has one: `file:3 (id 'c')`."""
    return f"{issue.where} (id {issue.example_id!r})" if issue.example_id is not None else issue.where


def _without_where(issue: Issue) -> str:
    """The message without a leading copy of its location and id (they are printed in front already)."""
    return without_location(issue.message, issue.where, issue.example_id)


def _limit(value: str) -> int | None:
    """A size limit on the command line: an integer >= 1, or 'none'."""
    if value.lower() in ("none", "null"):
        return None
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: an integer >= 1, or none")
    return int(value)


def data_check_main(argv: Sequence[str] | None = None) -> int:
    """`audio-thinker data check MANIFEST`: print the report; exit status 1 when there are errors."""
    parser = argparse.ArgumentParser(prog="audio-thinker data check", description=__doc__.splitlines()[0])
    parser.add_argument(
        "manifest", type=Path, help="manifest file (our JSONL, MMAU or AVQA JSON, TRL or ms-SWIFT GRPO JSONL)"
    )
    parser.add_argument("--format", default="auto", choices=["auto", *FORMATS])
    parser.add_argument("--audio-root", type=Path, default=None, help="base of relative audio paths")
    parser.add_argument("--target-rate", type=int, default=16_000)
    parser.add_argument("--max-audio-seconds", type=float, default=30.0)
    parser.add_argument("--silence-db", type=float, default=-60.0)
    parser.add_argument("--verbose", action="store_true", help="list every info line too")
    parser.add_argument(
        "--model",
        default=None,
        help="check each prompt fits this model's context (hub id, local "
        "path or embedded name, e.g. tiny-qwen2-audio; reads its config and processor, no weights)",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=256,
        help="completion budget the prompt leaves room for (rollout.max_new_tokens)",
    )
    parser.add_argument("--prompt", default="think", choices=["think", "adaptive", "direct"], help="prompt template")
    parser.add_argument(
        "--max-row-bytes",
        type=_limit,
        default=MAX_ROW_BYTES,
        help="a longer JSONL line is an error, not read (data.max_row_bytes; 'none': no limit)",
    )
    parser.add_argument(
        "--max-text-chars",
        type=_limit,
        default=MAX_TEXT_CHARS,
        help="a longer question, answer, option or system turn is an error (data.max_text_chars; 'none': no limit)",
    )
    args = parser.parse_args(argv)
    budget = None
    if args.model:
        from audio_thinker.data.prompt_length import PromptBudget  # imports transformers: only when asked

        budget = PromptBudget.for_model(args.model, TEMPLATES[args.prompt], args.max_new_tokens)
    report = check_dataset(
        args.manifest,
        args.format,
        args.audio_root,
        args.target_rate,
        args.max_audio_seconds,
        args.silence_db,
        budget,
        progress=True,
        max_row_bytes=args.max_row_bytes,
        max_text_chars=args.max_text_chars,
    )
    if args.model is None:
        print("(prompt lengths not checked: pass --model to check them against a model's context)", file=sys.stderr)
    print(format_report(report, verbose=args.verbose))
    return 0 if report.ok else 1
