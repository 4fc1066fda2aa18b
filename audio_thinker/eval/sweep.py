"""Summarise a Hydra multirun directory: one row per run, the swept overrides and the numbers at the end of each run.

A run is a subdirectory with `.hydra/overrides.yaml`. Its training numbers are, for every `reward/*`, `val/*` and
`scaling/*` scalar (std columns left out; read from its TensorBoard, CSV or MLflow logs by `audio_thinker.run_logs`),
the mean of the values logged over the run's last N steps (`last_n`, default 10): one step's reward is a handful of
samples, so the last value alone is mostly noise. Scalars
logged less often than every step (validation, the scaling callback) average what falls in that window, at least
their last value. When the run directory holds an evaluation (a `metrics.json`, e.g. from `audio-thinker eval
hydra.run.dir=<run>/eval`, or an `eval -m` sweep), its accuracy, think rate, format-valid rate and mean think
length are added, plus slope (with its standard error) and sweet spot from `scaling.json` beside it.
Only overrides whose value differs between runs become columns (the swept ones; with one run, all of them).
Accuracy columns come right after `reward/total`: reward scales differ between suites, accuracy does not.
Outputs: `summary.md`, `summary.csv` and `summary.png` (reward and accuracy per run with their values on the bars,
and each run's scaling curve when any run has one).
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from audio_thinker.run_logs import NoRunLogs, read_scalars

SCALAR_PREFIXES = ("reward/", "val/", "scaling/")
EVAL_METRICS = ("accuracy", "think_rate", "format_valid_rate", "mean_think_tokens")
EVAL_SCALING = ("slope", "slope_stderr", "sweet_spot", "sweet_spot_accuracy")
# Accuracy as each source measures it, in the order they are shown beside reward/total.
ACCURACY_COLUMNS = ("reward/accuracy", "val/accuracy", "eval/accuracy")
LAST_N = 10
_BUDGET_TAG = re.compile(r"^scaling/accuracy@?(\d+)$")  # MLflow stores `scaling/accuracy@25` without the @


@dataclass
class RunSummary:
    """One run of the sweep: its directory name, overrides, final numbers and scaling curve (if any)."""

    name: str
    overrides: dict[str, str]
    values: dict[str, float]
    curve: tuple[list[int], list[float]] | None = None


def read_overrides(run_dir: Path) -> dict[str, str]:
    """The run's command-line overrides as {key: value}, in order."""
    items = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) or []
    return dict(item.split("=", 1) if "=" in item else (item, "") for item in items)


def scalar_series(run_dir: Path, prefixes: tuple[str, ...] = SCALAR_PREFIXES) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} of every scalar under `run_dir` starting with one of `prefixes` (std tags left out);
    a step logged twice (a resumed run) keeps the later value. A run without logs (an `eval -m` sweep's) has none."""
    try:
        series = read_scalars(run_dir)
    except NoRunLogs:
        return {}
    return {tag: points for tag, points in series.items() if tag.startswith(prefixes) and not tag.endswith("_std")}


def tail_means(run_dir: Path, last_n: int = LAST_N, prefixes: tuple[str, ...] = SCALAR_PREFIXES) -> dict[str, float]:
    """Per tag, the mean of the values logged in the run's last `last_n` steps (at least the tag's last value)."""
    if last_n < 1:
        raise ValueError(f"last_n must be >= 1 step, got {last_n}")
    series = scalar_series(run_dir, prefixes)
    end = max((max(steps) for steps in series.values() if steps), default=0)
    means = {}
    for tag, steps in sorted(series.items()):
        window = [value for step, value in steps.items() if step > end - last_n] or [steps[max(steps)]]
        means[tag] = sum(window) / len(window)
    return means


def read_eval(run_dir: Path) -> tuple[dict[str, float], tuple[list[int], list[float]] | None]:
    """`eval/*` numbers from the newest metrics.json under `run_dir` and the scaling.json beside it."""
    found = sorted(run_dir.rglob("metrics.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        return {}, None
    metrics = json.loads(found[-1].read_text())
    values = {f"eval/{key}": float(metrics[key]) for key in EVAL_METRICS if key in metrics}
    curve = None
    scaling_file = found[-1].parent / "scaling.json"
    if scaling_file.is_file():
        scaling = json.loads(scaling_file.read_text())
        values |= {f"eval/{key}": float(scaling[key]) for key in EVAL_SCALING if scaling.get(key) is not None}
        curve = (list(scaling["budgets"]), list(scaling["accuracy"]))
    return values, curve


def curve_from_scalars(values: dict[str, float]) -> tuple[list[int], list[float]] | None:
    """The final `scaling/accuracy@L` values of a training run as a curve, if it logged any."""
    points = sorted((int(m.group(1)), v) for tag, v in values.items() if (m := _BUDGET_TAG.match(tag)))
    return ([b for b, _ in points], [a for _, a in points]) if points else None


def collect_runs(sweep_dir: Path, last_n: int = LAST_N) -> list[RunSummary]:
    """Every run under `sweep_dir`, ordered by job number."""
    dirs = [d for d in Path(sweep_dir).iterdir() if (d / ".hydra" / "overrides.yaml").is_file()]
    dirs.sort(key=lambda d: (job_number(d) is None, job_number(d) or 0, d.name))
    runs = []
    for run_dir in dirs:
        values = tail_means(run_dir, last_n)
        eval_values, curve = read_eval(run_dir)
        values |= eval_values
        name = str(job_number(run_dir)) if job_number(run_dir) is not None else run_dir.name
        runs.append(RunSummary(name, read_overrides(run_dir), values, curve or curve_from_scalars(values)))
    return runs


def job_number(run_dir: Path) -> int | None:
    """Hydra's job number from a run folder named `<n>` or `<n>_<overrides>`."""
    head = run_dir.name.split("_", 1)[0]
    return int(head) if head.isdigit() else None


def swept_keys(runs: list[RunSummary]) -> list[str]:
    """Override keys whose value is not the same in every run (all keys when there is one run)."""
    keys = list(dict.fromkeys(key for run in runs for key in run.overrides))
    if len(runs) < 2:
        return keys
    return [key for key in keys if len({run.overrides.get(key) for run in runs}) > 1]


def table(runs: list[RunSummary]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: run, swept overrides, then every number any run has (missing cells empty)."""
    keys = swept_keys(runs)
    columns = sorted({name for run in runs for name in run.values}, key=_column_order)
    rows = [
        [run.name, *(run.overrides.get(k, "") for k in keys), *(_fmt(run.values.get(c)) for c in columns)]
        for run in runs
    ]
    return ["run", *keys, *columns], rows


def _column_order(name: str) -> tuple:
    """reward/total, the accuracies, other rewards and val/*, scaling (budgets numerically), eval (as in EVAL_*)."""
    if name == "reward/total":
        return (0, 0, name)
    if name in ACCURACY_COLUMNS:
        return (0, 1 + ACCURACY_COLUMNS.index(name), name)
    if name.startswith(("reward/", "val/")):
        return (1, 0, name)
    if match := _BUDGET_TAG.match(name):
        return (2, int(match.group(1)), name)
    if name.startswith("scaling/"):
        return (3, 0, name)
    eval_order = [f"eval/{key}" for key in (*EVAL_METRICS, *EVAL_SCALING)]
    return (4, eval_order.index(name) if name in eval_order else len(eval_order), name)


def _fmt(value: float | None) -> str:
    """A number with 4 significant digits; empty when missing or not finite."""
    return "" if value is None or not math.isfinite(value) else f"{value:.4g}"


def run_label(run: RunSummary, keys: list[str]) -> str:
    """'0: loss.beta=0.04' from the swept overrides."""
    return f"{run.name}: " + " ".join(f"{k}={run.overrides[k]}" for k in keys if k in run.overrides)


def write_markdown(header: list[str], rows: list[list[str]], path: Path, title: str) -> None:
    """A Markdown table under a title."""
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    path.write_text("\n".join(lines) + "\n")


def write_plot(runs: list[RunSummary], path: Path, last_n: int = LAST_N):
    """Reward and accuracy per run (bars with their values) and, when any run has one, the scaling curves."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    keys = swept_keys(runs)
    labels = [run_label(run, keys) for run in runs]
    accuracies = [column for column in ACCURACY_COLUMNS if any(column in run.values for run in runs)]
    curves = any(run.curve for run in runs)
    panels = 1 + bool(accuracies) + curves
    figure = Figure(figsize=(5.5 * panels, 1.6 + 0.45 * len(runs) * max(1, len(accuracies))), dpi=100)
    axes = list(figure.subplots(1, panels, squeeze=False)[0])
    _bars(
        axes.pop(0),
        labels,
        {"reward/total": [run.values.get("reward/total") for run in runs]},
        f"reward/total (mean of the last {last_n} steps)",
    )
    if accuracies:
        _bars(
            axes.pop(0),
            labels,
            {c: [run.values.get(c) for run in runs] for c in accuracies},
            "accuracy",
            limit=(0, 1.1),
        )
    if curves:
        panel = axes.pop(0)
        for run, label in zip(runs, labels, strict=True):
            if run.curve:
                panel.plot(run.curve[0], run.curve[1], "o-", label=label)
        panel.set_xlabel("reasoning budget L (tokens)")
        panel.set_ylabel("accuracy")
        panel.set_title("test-time scaling")
        panel.grid(alpha=0.3)
        panel.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    return figure


def _bars(axes, labels: list[str], series: dict[str, list[float | None]], title: str, limit=None) -> None:
    """Horizontal bars, one group per run and one bar per series, each with its value written at its end."""
    height = 0.8 / len(series)
    for index, (name, values) in enumerate(series.items()):
        positions = [row + (index - (len(series) - 1) / 2) * height for row in range(len(labels))]
        numbers = [float("nan") if v is None else v for v in values]
        bars = axes.barh(positions, numbers, height=height, label=name)
        axes.bar_label(bars, labels=[_fmt(v) for v in values], padding=3, fontsize=7)  # matplotlib skips nan bars
        for position, value in zip(positions, values, strict=True):
            if value is None:  # no bar: say so rather than leave a gap that reads as zero
                axes.text(0, position, " n/a", va="center", fontsize=7, color="gray")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_ylim(len(labels) - 0.5, -0.5)  # the first run on top
    axes.set_title(title)
    if limit is not None:
        axes.set_xlim(*limit)
    else:
        axes.margins(x=0.2)  # room for the value labels
    if len(series) > 1:
        axes.legend(fontsize=7)


def summarize_sweep(sweep_dir: str | Path, out_dir: str | Path | None = None, last_n: int = LAST_N) -> list[RunSummary]:
    """Write summary.md, summary.csv and summary.png for the multirun at `sweep_dir` (into it by default); training
    scalars are means over each run's last `last_n` steps."""
    sweep_dir = Path(sweep_dir)
    runs = collect_runs(sweep_dir, last_n)
    if not runs:
        raise FileNotFoundError(f"{sweep_dir} has no runs (subdirectories with .hydra/overrides.yaml)")
    out = Path(out_dir) if out_dir is not None else sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    header, rows = table(runs)
    title = f"Sweep {sweep_dir.name}: {len(runs)} runs (training scalars: means over each run's last {last_n} steps)"
    write_markdown(header, rows, out / "summary.md", title)
    with open(out / "summary.csv", "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    write_plot(runs, out / "summary.png", last_n)
    return runs
