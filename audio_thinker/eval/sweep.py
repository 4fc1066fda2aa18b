"""Summarise a Hydra multirun directory: one row per run, the swept overrides and the final numbers.

A run is a subdirectory with `.hydra/overrides.yaml`. Its numbers are the last TensorBoard value of every
`reward/*` and `scaling/*` scalar (std columns left out) and, when the run directory holds an evaluation (a
`metrics.json`, e.g. from `audio-thinker eval hydra.run.dir=<run>/eval`, or an `eval -m` sweep), its accuracy,
think rate, format-valid rate and mean think length, plus slope and sweet spot from `scaling.json` beside it.
Only overrides whose value differs between runs become columns (the swept ones; with one run, all of them).
Outputs: `summary.md`, `summary.csv` and `summary.png` (final reward per run, and each run's scaling curve).
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

SCALAR_PREFIXES = ("reward/", "scaling/")
EVAL_METRICS = ("accuracy", "think_rate", "format_valid_rate", "mean_think_tokens")
EVAL_SCALING = ("slope", "sweet_spot", "sweet_spot_accuracy")
_BUDGET_TAG = re.compile(r"^scaling/accuracy@(\d+)$")


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


def final_scalars(run_dir: Path, prefixes: tuple[str, ...] = SCALAR_PREFIXES) -> dict[str, float]:
    """Last logged value (highest step) of every scalar tag under `run_dir` starting with one of `prefixes`."""
    last: dict[str, tuple[int, float]] = {}
    for events in sorted(run_dir.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            if not tag.startswith(prefixes) or tag.endswith("_std"):
                continue
            for event in accumulator.Scalars(tag):
                if tag not in last or event.step >= last[tag][0]:
                    last[tag] = (event.step, event.value)
    return {tag: value for tag, (_, value) in sorted(last.items())}


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


def collect_runs(sweep_dir: Path) -> list[RunSummary]:
    """Every run under `sweep_dir`, ordered by job number."""
    dirs = [d for d in Path(sweep_dir).iterdir() if (d / ".hydra" / "overrides.yaml").is_file()]
    dirs.sort(key=lambda d: (job_number(d) is None, job_number(d) or 0, d.name))
    runs = []
    for run_dir in dirs:
        values = final_scalars(run_dir)
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
    rows = [[run.name, *(run.overrides.get(k, "") for k in keys), *(_fmt(run.values.get(c)) for c in columns)]
            for run in runs]  # fmt: skip
    return ["run", *keys, *columns], rows


def _column_order(name: str) -> tuple:
    """reward/total first, then rewards, scaling (budgets numerically), eval (in the order of EVAL_*)."""
    if name == "reward/total":
        return (0, 0, name)
    if name.startswith("reward/"):
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


def write_plot(runs: list[RunSummary], path: Path) -> None:
    """Final reward/total per run (bars) and each run's scaling curve (lines)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    keys = swept_keys(runs)
    labels = [run_label(run, keys) for run in runs]
    figure = Figure(figsize=(11, 4), dpi=100)
    bars, curves = figure.subplots(1, 2)
    rewards = [run.values.get("reward/total", float("nan")) for run in runs]
    bars.barh(range(len(runs)), rewards, tick_label=labels)
    bars.invert_yaxis()
    bars.set_xlabel("final reward/total")
    bars.set_title("reward")
    for run, label in zip(runs, labels, strict=True):
        if run.curve:
            curves.plot(run.curve[0], run.curve[1], "o-", label=label)
    curves.set_xlabel("reasoning budget L (tokens)")
    curves.set_ylabel("accuracy")
    curves.set_title("test-time scaling")
    curves.grid(alpha=0.3)
    if any(run.curve for run in runs):
        curves.legend(fontsize=7)
    else:
        curves.text(0.5, 0.5, "no scaling curves\n(callbacks=with_scaling or audio-thinker eval)",
                    ha="center", va="center", transform=curves.transAxes)  # fmt: skip
    figure.tight_layout()
    figure.savefig(path)


def summarize_sweep(sweep_dir: str | Path, out_dir: str | Path | None = None) -> list[RunSummary]:
    """Write summary.md, summary.csv and summary.png for the multirun at `sweep_dir` (into it by default)."""
    sweep_dir = Path(sweep_dir)
    runs = collect_runs(sweep_dir)
    if not runs:
        raise FileNotFoundError(f"{sweep_dir} has no runs (subdirectories with .hydra/overrides.yaml)")
    out = Path(out_dir) if out_dir is not None else sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    header, rows = table(runs)
    write_markdown(header, rows, out / "summary.md", f"Sweep {sweep_dir.name}: {len(runs)} runs")
    with open(out / "summary.csv", "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    write_plot(runs, out / "summary.png")
    return runs
