"""tools/bench_step.py at a trivial size: the floor step, the audio-encoder counter, the report's last line."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCH_PATH = Path(__file__).resolve().parents[2] / "tools" / "bench_step.py"


@pytest.fixture(scope="module")
def bench():
    """tools/ is not a package: load the script as a module."""
    spec = importlib.util.spec_from_file_location("bench_step", BENCH_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_step"] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_step", None)


@pytest.fixture(scope="module")
def tiny(bench):
    """One measured step of 1 prompt x G=2, 3 new tokens."""
    return bench.BenchArgs(steps=1, warmup=0, rounds=1, batch_size=1, group_size=2, new_tokens=3)


def test_floor_steps_produce_exactly_the_forced_length(bench, tiny):
    floor = bench.Floor(tiny, bench.synthetic_prompts(tiny, 2))
    floor.step()
    floor.step()
    assert floor.lengths == {3}
    assert len(floor.watch.wall) == 2 and all(t > 0 for t in floor.watch.wall)


def test_audio_is_encoded_once_per_example_and_naive_per_sample_and_pass(bench, tiny):
    once = bench.run_ours(tiny, "tiny_qwen2_audio")
    assert once.completion_lengths == {3}
    assert once.encoder_clips == once.examples == [1]  # generation and both log-prob passes reuse it
    naive = bench.run_ours(tiny, "tiny_qwen2_audio", naive=True)
    assert naive.encoder_clips == [1 * 2 * 3]  # examples x G x (generation, policy, reference)


def test_report_ends_with_the_machine_readable_line(bench, tiny):
    ours = bench.StepStats(bench.OURS, [2.0], [2.0], [1.5], {3})
    trl = bench.StepStats(bench.TRL, [4.0], [4.0], [1.5], {3})
    once = bench.StepStats(bench.ONCE, [1.0], [1.0], [1.0], {3}, encoder_clips=[2], examples=[2])
    floor = bench.Floor.__new__(bench.Floor)  # only its measurements are read
    floor.watch, floor.lengths = bench.Stopwatch("cpu"), {3}
    floor.watch.wall, floor.watch.cpu = [1.5], [1.5]
    text = bench.report(tiny, {bench.OURS: ours, bench.TRL: trl}, {bench.ONCE: once}, floor)
    assert text.splitlines()[-1] == "ratio_vs_trl=0.500 overhead_pct=25.0 encoder_calls_per_step=2 examples_per_step=2"
    assert math.isnan(bench.summary({bench.OURS: ours}, {})["ratio_vs_trl"])


@pytest.mark.slow  # importing trl and building its trainer takes ~10 s
def test_trl_runs_the_same_forced_length(bench, tiny):
    pytest.importorskip("trl")
    stats = bench.run_trl(tiny, bench.synthetic_prompts(tiny, 2))
    assert stats.completion_lengths == {3} and len(stats.seconds) == 1
