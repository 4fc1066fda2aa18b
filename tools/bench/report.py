"""Results: the JSON the script writes, the Markdown it prints, the README table and the machine-readable line.

Everything printed is computed from the JSON document, so the README table can be regenerated from saved runs.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from .stats import NAN, Estimate, Pairs, bootstrap_median, median, overhead_pct, per_round

OURS, NAIVE, TIGHT = "audio-thinker (ours)", "naive floor (generate + full passes)", "tight floor"
TRL_NAMES = {
    "trl": "TRL GRPOTrainer",
    "trl-compact": "TRL, compact LM head (its CUDA path)",
    "trl-compile": "TRL, compact LM head + torch_compile",
    "trl-vllm": "TRL, use_vllm (server)",
}
OURS_VLLM = "audio-thinker, vllm engine"
ONCE, REENCODED = "ours, audio encoded once per example", "ours, audio re-encoded per sample and pass"
QUANT_NAMES = {"none": "full fine-tuning", "lora": "LoRA r=16", "qlora_nf4": "QLoRA NF4 r=16"}
TARGET_RATIO, TARGET_OVERHEAD = 0.7, 10.0
README_BEGIN, README_END = "<!-- bench_step:begin -->", "<!-- bench_step:end -->"


# -- figures from measurements ----------------------------------------------------------------------------
def contender_entry(rounds: list[Pairs], shapes: list) -> dict:
    """A contender's rounds (raw times) and its ratios to the tight floor, on the wall clock and CPU time."""
    return {
        "rounds": [vars(pairs) for pairs in rounds],
        "x_tight": bootstrap_median(per_round(rounds, "wall")).as_dict(),
        "x_tight_cpu": bootstrap_median(per_round(rounds, "cpu")).as_dict(),
        "shapes": sorted({tuple(shape) for shape in shapes}),
    }


def rounds_of(entry: dict) -> list[Pairs]:
    return [Pairs(**r) for r in entry["rounds"]]


def estimate(entry: dict | None, key: str = "x_tight") -> Estimate:
    return Estimate(**entry[key]) if entry else NAN


def ratio_between(a: dict | None, b: dict | None, clock: str = "wall") -> Estimate:
    """Contender a over contender b, round by round."""
    if not a or not b:
        return NAN
    pairs = zip(per_round(rounds_of(a), clock), per_round(rounds_of(b), clock), strict=True)
    return bootstrap_median([x / y for x, y in pairs])


def strongest_trl(contenders: dict[str, dict]) -> str | None:
    """The TRL variant with the lowest median step in units of the tight floor."""
    trl = [name for name in contenders if name in TRL_NAMES.values() and name != TRL_NAMES["trl-vllm"]]
    return min(trl, key=lambda name: estimate(contenders[name]).median, default=None)


def headline(doc: dict) -> dict[str, float]:
    """The machine-readable figures (NaN where a contender was skipped)."""
    text, audio = doc["contenders"], doc.get("audio", {}).get("contenders", {})
    ours, naive, trl = text.get(OURS), text.get(NAIVE), text.get(strongest_trl(text) or "")
    vs_trl = ratio_between(ours, trl)
    once = audio.get(ONCE)
    return {
        "ratio_vs_trl": vs_trl.median,
        "overhead_pct": ratio_between(naive, ours).map(lambda r: 100 * (1 - r)).median,  # today's: vs the naive floor
        "encoder_calls_per_step": once["encoder_clips_per_step"] if once else math.nan,
        "examples_per_step": once["examples_per_step"] if once else math.nan,
        "ratio_ci_high": vs_trl.high,
        "overhead_tight_pct": estimate(ours).map(overhead_pct).median,
    }


def last_line(values: dict[str, float]) -> str:
    """`ratio_vs_trl=<x> overhead_pct=<y> encoder_calls_per_step=<n> examples_per_step=<m> ratio_ci_high=<h>
    overhead_tight_pct=<t>` on one line."""
    formats = {"ratio_vs_trl": ".3f", "ratio_ci_high": ".3f", "overhead_pct": ".1f", "overhead_tight_pct": ".1f"}
    return " ".join(f"{k}={v:{formats.get(k, 'g')}}" for k, v in values.items())


# -- Markdown ---------------------------------------------------------------------------------------------
def describe_workload(w: dict, t: dict) -> str:
    """One workload and its statistics in a sentence."""
    mode = f"{QUANT_NAMES[w['quant']]}, {w['dtype']}" + (", activation checkpointing" if w["checkpointing"] else "")
    audio = f", one {w['audio_seconds']:g} s clip each" if w.get("audio") else ""
    return (
        f"{Path(w['model']).name}: B={w['batch_size']} prompts of {w['prompt_tokens']} text tokens{audio} x "
        f"G={w['group_size']}, {w['new_tokens']} new tokens each, beta={w['beta']} (k3, bias-corrected), fused "
        f"AdamW lr={w['lr']}, {mode}; {t['rounds']} rounds x {t['steps']} measured steps (after {t['warmup']} "
        "warm-up steps each run)"
    )


def describe_machine(doc: dict) -> str:
    """Date, machine, load and versions in a sentence."""
    m = doc["machine"]
    kernels = f", {m['kernels']} kernels" if "kernels" in m else ""  # recorded since 2026-12-07
    return (
        f"{doc['date']}; {m['cpu']} ({m['cores']} cores{kernels}), device {m['device']}, {m['threads']} torch "
        "thread(s), "
        f"pinned to CPUs {m['affinity']}; load average {m['load_start']:.1f} at start, {m['load_end']:.1f} at end; "
        + ", ".join(f"{k} {v}" for k, v in doc["versions"].items())
    )


def contender_table(contenders: dict[str, dict], title: str) -> list[str]:
    """Median step and its ratio to the paired tight-floor step, wall clock and CPU time, with 95% intervals."""
    lines = [
        f"| {title} | median step (s) | x tight floor [95% CI] | x tight floor, CPU time [95% CI] | shapes "
        "(prompts, prompt len, completions, completion len) |",
        "|---|---|---|---|---|",
    ]
    floor_times = [t for entry in contenders.values() for r in entry["rounds"] for t in r["floor_wall"]]
    lines.append(f"| {TIGHT} (the unit) | {median(floor_times):.3f} | 1 | 1 | the contender's, each step |")
    for name, entry in contenders.items():
        times = [t for r in entry["rounds"] for t in r["wall"]]
        shapes = "; ".join(str(tuple(s)) for s in entry["shapes"])
        lines.append(
            f"| {name} | {median(times):.3f} | {estimate(entry)} | {estimate(entry, 'x_tight_cpu')} | {shapes} |"
        )
    return lines


def verdicts(doc: dict) -> list[str]:
    """The targets, each met only if its 95% interval clears it."""
    text = doc["contenders"]
    ours, trl_name = text.get(OURS), strongest_trl(text)
    lines = []
    if ours and trl_name:
        wall, cpu = ratio_between(ours, text[trl_name]), ratio_between(ours, text[trl_name], "cpu")
        lines.append(
            f"- ours / {trl_name} = {wall} (CPU time {cpu}); target <= {TARGET_RATIO}: "
            f"{verdict(wall.met_below(TARGET_RATIO))} (interval must clear it)"
        )
    if ours:
        over = estimate(ours).map(overhead_pct)
        lines.append(
            f"- framework overhead over the tight floor = {over.median:.1f}% of our step [{over.low:.1f}, "
            f"{over.high:.1f}]; target <= {TARGET_OVERHEAD:g}%: "
            f"{verdict(over.met_below(TARGET_OVERHEAD))}"
        )
    if NAIVE in text:
        lines.append(f"- algorithmic saving: naive / tight = {estimate(text[NAIVE])}")
    return lines


def verdict(met: bool) -> str:
    return "met" if met else "not met"


def phase_table(title: str, phases: dict[str, float]) -> list[str]:
    """Milliseconds per measured step of each phase."""
    lines = [f"| {title}: phase | ms / step |", "|---|---|"]
    return lines + [f"| {phase} | {ms:.1f} |" for phase, ms in phases.items()]


def audio_table(audio: dict) -> list[str]:
    """Encoder comparison in units of the audio floor, and clips through the encoder per step."""
    lines = [describe_workload(audio["workload"], audio["timing"]), ""]
    lines += [
        "| audio | median step (s) | x audio floor [95% CI] | clips encoded / step | encoder calls / step "
        "| examples / step |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in audio["contenders"].items():
        times = [t for r in entry["rounds"] for t in r["wall"]]
        lines.append(
            f"| {name} | {median(times):.3f} | {estimate(entry)} | {entry['encoder_clips_per_step']:g} "
            f"| {entry['encoder_calls_per_step']:g} | {entry['examples_per_step']:g} |"
        )
    return lines


def markdown(doc: dict) -> str:
    """The full report; its last line is the machine-readable one."""
    lines = [describe_machine(doc)]
    if doc["contenders"]:
        lines += ["", describe_workload(doc["workload"], doc["timing"]), ""]
        lines += [*contender_table(doc["contenders"], "step"), "", *verdicts(doc)]
    for name, phases in doc.get("phases", {}).items():
        lines += ["", *phase_table(name, phases)]
    if doc.get("audio"):
        lines += ["", *audio_table(doc["audio"])]
    for result in absolute_results(doc):
        lines += ["", *absolute_table(result)]
    return "\n".join([*lines, "", last_line(headline(doc))])


def absolute_results(doc: dict) -> list[dict]:
    """The absolute runs of a saved result: one per variant (runs saved before variants hold one dict)."""
    runs = doc.get("absolute") or []
    return [runs] if isinstance(runs, dict) else runs


def absolute_table(result: dict) -> list[str]:
    """The absolute figures as Markdown."""
    w = result["workload"]
    step = result["step_s"]
    reserved = result["peak_reserved_gib"]
    variant = f", {result['variant']}" if result.get("variant") else ""
    goal = result.get("goal_step_s")
    verdict = "" if goal is None else f"; goal <= {goal:g} s: {'met' if step['high'] <= goal else 'not met'}"
    cap = f" (allocations capped at {result['memory_cap_gib']:g} GiB)" if result.get("memory_cap_gib") else ""
    return [
        f"| absolute, {result['device']}{variant} | value |",
        "|---|---|",
        f"| configuration | {w['model'].rsplit('/', 1)[-1]}, {w['quant']}, {w['dtype']}, "
        f"checkpointing {w['checkpointing']}, B={w['batch_size']} x G={w['group_size']}, prompt "
        f"{result['prompt_len']} tokens, {w['new_tokens']} new tokens |",
        f"| step time (s), median [95% CI] | {step['median']:.2f} [{step['low']:.2f}, {step['high']:.2f}]{verdict} |",
        f"| completion tokens / s | {result['completion_tokens_per_s']:.1f} |",
        f"| tokens / s (prompt + completion, every sample) | {result['tokens_per_s']:.1f} |",
        f"| peak memory (GiB) | {result['peak_memory_gib']:.2f}"
        + (f" allocated, {reserved:.2f} reserved" if reserved is not None else " (peak RSS)")
        + f"; target <= {result['target_peak_gib']:g}{cap} |",
    ]


# -- README -----------------------------------------------------------------------------------------------
def readme_block(docs: list[dict]) -> str:
    """The README's performance tables, one row per saved run, each run's workload, date, machine and versions."""
    lines = [README_BEGIN]
    text_docs, audio_docs = [d for d in docs if d["contenders"]], [d for d in docs if d.get("audio")]
    if text_docs:
        lines += [
            "| run | ours x tight | naive x tight | strongest TRL x tight | ours / TRL [95% CI] "
            "| overhead over tight [95% CI] | targets (<= 0.7x TRL, <= 10%) |",
            "|---|---|---|---|---|---|---|",
            *map(readme_row, text_docs),
            "",
        ]
    if audio_docs:
        lines += [
            "| run | audio | x audio floor [95% CI] | clips encoded / step | examples / step |",
            "|---|---|---|---|---|",
            *[row for doc in audio_docs for row in audio_rows(doc)],
            "",
        ]
    for result in (r for d in docs for r in absolute_results(d)):
        lines += [*absolute_table(result), ""]
    for doc in docs:
        workloads = [describe_workload(doc["workload"], doc["timing"])] if doc["contenders"] else []
        workloads += [describe_workload(doc["audio"]["workload"], doc["timing"])] if doc.get("audio") else []
        trl = [f"{name} {estimate(e)}" for name, e in doc["contenders"].items() if name in TRL_NAMES.values()]
        variants = f" TRL variants x tight: {'; '.join(trl)}." if trl else ""
        described = "; ".join(workloads) + "." if workloads else ""  # an absolute-only run has its own table
        lines.append(f"- {doc['name']}: " + " ".join(filter(None, (described + variants, describe_machine(doc)))))
    return "\n".join([*lines, README_END])


def readme_row(doc: dict) -> str:
    """One run's step figures and targets."""
    text = doc["contenders"]
    trl = strongest_trl(text)
    ours = estimate(text.get(OURS))
    vs, over = ratio_between(text.get(OURS), text.get(trl or "")), ours.map(overhead_pct)
    met = ", ".join(verdict(e.met_below(t)) for e, t in ((vs, TARGET_RATIO), (over, TARGET_OVERHEAD)))
    naive = estimate(text[NAIVE]) if NAIVE in text else "not run"  # --skip-naive
    return (
        f"| {doc['name']} | {ours} | {naive} | {estimate(text.get(trl or ''))} "
        f"({trl or 'not run'}) | {vs} | {over.median:.1f}% [{over.low:.1f}, {over.high:.1f}] | {met} |"
    )


def audio_rows(doc: dict) -> list[str]:
    """One run's encoder comparison."""
    return [
        f"| {doc['name']} | {name} | {estimate(entry)} | {entry['encoder_clips_per_step']:g} "
        f"| {entry['examples_per_step']:g} |"
        for name, entry in doc["audio"]["contenders"].items()
    ]


def replace_readme_block(readme: str, block: str) -> str:
    """`readme` with the text between the markers replaced by `block` (markers included)."""
    pattern = re.compile(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(readme):
        raise ValueError(f"README has no {README_BEGIN} ... {README_END} block to replace")
    return pattern.sub(lambda _: block, readme)
