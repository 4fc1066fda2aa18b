"""The benchmark's statistics and report on hand-made numbers (tools/bench/stats.py, report.py)."""

from __future__ import annotations

import math

import pytest

from tools.bench import report
from tools.bench.stats import Estimate, Pairs, Stopwatch, bootstrap_median, overhead_pct, ratio_of


def pairs(ratios: list[float], floor: float = 2.0) -> Pairs:
    """A run whose steps took `ratio` x a floor step of `floor` seconds (CPU time twice as far from the floor)."""
    return Pairs(
        wall=[r * floor for r in ratios],
        cpu=[(2 * r - 1) * floor for r in ratios],
        floor_wall=[floor] * len(ratios),
        floor_cpu=[floor] * len(ratios),
    )


def test_pairs_ratio_is_the_median_of_per_step_ratios():
    run = pairs([1.0, 1.5, 3.0])
    assert run.ratio() == 1.5
    assert run.ratio("cpu") == 2.0  # (2 * 1.5 - 1)


def test_pairs_drop_warmup_steps_and_refuse_unpaired_ones():
    step, floor = Stopwatch(), Stopwatch()
    step.wall, step.cpu, floor.wall, floor.cpu = [9.0, 2.0, 4.0], [9.0, 2.0, 4.0], [1.0, 1.0, 2.0], [1.0, 1.0, 2.0]
    assert Pairs().add(step, floor, skip=1).ratio() == 2.0  # the 9 s warm-up step is gone
    floor.wall = [1.0]
    with pytest.raises(RuntimeError, match="3 contender steps but 1 paired floor steps"):
        Pairs().add(step, floor)


def test_bootstrap_of_identical_values_has_no_width():
    assert bootstrap_median([1.25] * 10) == Estimate(1.25, 1.25, 1.25)


def test_bootstrap_interval_brackets_the_median_and_shrinks_with_more_rounds():
    values = [1.0, 1.1, 1.2, 1.3, 1.4]
    few = bootstrap_median(values)
    assert few.median == 1.2 and 1.0 <= few.low < 1.2 < few.high <= 1.4
    many = bootstrap_median(values * 8)
    assert many.median == 1.2 and many.high - many.low < few.high - few.low
    assert bootstrap_median(values) == few  # seeded: the same figures every time
    assert math.isnan(bootstrap_median([]).median)


def test_targets_are_met_only_when_the_whole_interval_clears_them():
    assert Estimate(0.65, 0.6, 0.69).met_below(0.7)
    assert not Estimate(0.65, 0.6, 0.71).met_below(0.7)  # the median alone would pass


def test_ratio_of_two_contenders_is_taken_round_by_round():
    ours = [pairs([1.0]), pairs([1.2]), pairs([1.1])]
    trl = [pairs([2.0]), pairs([2.0]), pairs([2.2])]
    assert ratio_of(ours, trl).median == pytest.approx(0.5)  # per round: 0.5, 0.6, 0.5


def test_overhead_is_the_share_of_our_step_the_floor_does_not_spend():
    assert overhead_pct(1.25) == pytest.approx(20.0)
    assert overhead_pct(0.8) == pytest.approx(-25.0)  # below the floor
    assert Estimate(1.25, 1.0, 2.0).map(overhead_pct).as_dict() == pytest.approx({"median": 20, "low": 0, "high": 50})


def document(ours: float = 1.2, trl: float = 2.0, naive: float = 1.5, audio: bool = True) -> dict:
    """A results document with 10 identical rounds per contender."""
    text = {
        report.NAIVE: report.contender_entry([pairs([naive])] * 10, []),
        report.OURS: report.contender_entry([pairs([ours])] * 10, []),
        report.TRL_NAMES["trl"]: report.contender_entry([pairs([trl * 1.5])] * 10, []),
        report.TRL_NAMES["trl-compact"]: report.contender_entry([pairs([trl])] * 10, []),
    }
    once = {
        **report.contender_entry([pairs([1.0])] * 10, []),
        "encoder_clips_per_step": 2.0,
        "encoder_calls_per_step": 1.0,
        "examples_per_step": 2.0,
    }
    workload = {
        "model": "/cache/tiny-qwen2",
        "batch_size": 2,
        "prompt_tokens": 89,
        "group_size": 8,
        "new_tokens": 64,
        "beta": 0.04,
        "lr": 1e-5,
        "quant": "none",
        "dtype": "float32",
        "checkpointing": False,
    }
    machine = {
        "device": "cpu",
        "threads": 1,
        "affinity": [1],
        "cores": 2,
        "load_start": 4.0,
        "load_end": 5.0,
        "cpu": "AMD EPYC",
    }
    doc = {
        "name": "tiny",
        "date": "2026-01-01 00:00 UTC",
        "machine": machine,
        "versions": {"torch": "2.9.1"},
        "timing": {"rounds": 10, "steps": 2, "warmup": 1},
        "workload": workload,
        "contenders": text,
    }
    if audio:
        doc["audio"] = {"contenders": {report.ONCE: once}, "workload": workload, "timing": doc["timing"]}
    return doc


def test_headline_compares_ours_with_the_strongest_trl_variant():
    head = report.headline(document())
    assert head["ratio_vs_trl"] == pytest.approx(0.6)  # 1.2 / 2.0 (compact), not / 3.0 (plain)
    assert head["ratio_ci_high"] == pytest.approx(0.6)
    assert head["overhead_tight_pct"] == pytest.approx(100 * (1 - 1 / 1.2))
    assert head["overhead_pct"] == pytest.approx(100 * (1 - 1.5 / 1.2))  # today's field: vs the naive floor
    assert head["encoder_calls_per_step"] == 2 and head["examples_per_step"] == 2


def test_report_ends_with_the_machine_readable_line_and_says_which_targets_are_met():
    text = report.markdown(document())
    assert text.splitlines()[-1] == (
        "ratio_vs_trl=0.600 overhead_pct=-25.0 encoder_calls_per_step=2 examples_per_step=2 ratio_ci_high=0.600 "
        "overhead_tight_pct=16.7"
    )
    assert "target <= 0.7: met" in text and "target <= 10%: not met" in text
    no_trl = document(audio=False)
    del no_trl["contenders"][report.TRL_NAMES["trl"]], no_trl["contenders"][report.TRL_NAMES["trl-compact"]]
    head = report.headline(no_trl)
    assert math.isnan(head["ratio_vs_trl"]) and math.isnan(head["encoder_calls_per_step"])


def test_readme_block_is_regenerated_between_its_markers():
    readme = f"intro\n{report.README_BEGIN}\nold table\n{report.README_END}\noutro\n"
    updated = report.replace_readme_block(readme, report.readme_block([document()]))
    assert updated.startswith("intro\n") and updated.endswith("outro\n") and "old table" not in updated
    row = next(line for line in updated.splitlines() if line.startswith("| tiny |"))
    assert "0.600 [0.600, 0.600]" in row and "met, not met" in row
    assert "2026-01-01" in updated and "torch 2.9.1" in updated and "AMD EPYC" in updated
    with pytest.raises(ValueError, match="bench_step:begin"):
        report.replace_readme_block("no markers", "x")
