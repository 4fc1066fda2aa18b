"""Contender runs of the benchmark at a trivial size: paired shapes, encoder counts, TRL, the absolute run."""

from __future__ import annotations

import gc
import json
import weakref

import pytest
import torch
from transformers import AutoProcessor

from audio_thinker.embedded.architecture import TINY_AUDIO_SECONDS
from tools.bench import absolute, cli, floors, models, report
from tools.bench.ours import run_ours
from tools.bench.pairing import PairedFloor
from tools.bench.workload import StepShape, Workload, fixed_length_prompts

STEPS = 2


def setup(workload: Workload):
    processor = AutoProcessor.from_pretrained(workload.model)
    prompts = fixed_length_prompts(processor, workload, workload.batch_size * STEPS)
    audios = [ex.audio for ex in prompts.examples] if workload.audio else None
    paired = PairedFloor(floors.load_floor(workload, prompts.prompts, audios, "cpu"), "cpu")
    return prompts, paired


def test_rounds_rotate_the_order_and_free_each_run_before_the_next_starts():
    order, made, earlier_alive = [], [], []

    class Module:  # in a reference cycle, as a Lightning run leaves its module: only the cycle collector frees it
        def __init__(self) -> None:
            self.itself = self

    def contender(name: str):
        def run() -> str:
            earlier_alive.append(any(ref() is not None for ref in made))
            order.append(name)
            made.append(weakref.ref(Module()))
            return name

        return run

    gc.disable()  # no automatic collection: only run_rounds may free the cycles
    try:
        results = cli.run_rounds({name: contender(name) for name in "abc"}, rounds=2, device="cpu")
    finally:
        gc.enable()
    assert order == ["a", "b", "c", "b", "c", "a"]
    assert results == {"a": ["a", "a"], "b": ["b", "b"], "c": ["c", "c"]}
    assert not any(earlier_alive)


@pytest.fixture(scope="module")
def audio():
    model = str(models.tiny(audio=True))
    return Workload(model, batch_size=1, group_size=2, new_tokens=3, audio=True, audio_seconds=TINY_AUDIO_SECONDS)


def test_every_step_of_ours_is_paired_with_a_floor_step_on_identical_shapes(audio):
    prompts, paired = setup(audio)
    run = run_ours(audio, prompts, STEPS, "cpu", paired)
    prompt_len = paired.floor.batches[0].input_ids.shape[1]  # text + 100 audio tokens of the 4 s window
    assert run.shapes == run.floor_shapes == [StepShape(1, prompt_len, 2, 3)] * STEPS
    assert len(run.pairs(warmup=1).wall) == len(run.pairs(warmup=1).floor_wall) == STEPS - 1
    assert run.encoder_clips == [1] * STEPS and run.encoder_calls == [1] * STEPS  # once per example


def test_the_naive_audio_loop_encodes_every_sample_in_every_pass(audio):
    prompts, _ = setup(audio)
    run = run_ours(audio, prompts, 1, "cpu", naive_audio=True)
    assert run.encoder_clips == [1 * 2 * 3]  # examples x G x (generation, policy, reference)


def test_absolute_figures_of_one_configuration_on_a_cpu(audio):
    result = absolute.absolute_run(audio, steps=1, warmup=0, device="cpu")
    assert result["step_s"]["median"] > 0 and result["peak_memory_gib"] > 0
    assert result["completion_tokens_per_s"] == pytest.approx(2 * 3 / result["step_s"]["median"])
    assert any("peak memory" in line for line in report.absolute_table(result))
    assert report.absolute_results({"absolute": result}) == [result]  # a result saved before variants


def test_absolute_variants_reach_the_run_config_and_the_table(monkeypatch, audio):
    seen = {}

    def fake_run(workload, prompts, total_steps, device, engine="hf", overrides=()):
        seen.update(engine=engine, overrides=overrides)
        raise SystemExit("stop here")

    monkeypatch.setattr(absolute, "run_ours", fake_run)
    with pytest.raises(SystemExit):
        absolute.absolute_run(audio, steps=1, warmup=0, device="cpu", variant=absolute.VARIANTS["merged"])
    assert seen == {"engine": "hf", "overrides": ("rollout.generation_weights=merged",)}
    result = {
        "variant": "v",
        "goal_step_s": 12.0,
        "memory_cap_gib": 24.0,
        "workload": audio.as_dict(),
        "device": "gpu",
        "prompt_len": 9,
        "step_s": {"median": 10.0, "low": 9.0, "high": 13.0},
        "completion_tokens_per_s": 1.0,
        "tokens_per_s": 2.0,
        "peak_memory_gib": 20.0,
        "peak_reserved_gib": 21.0,
        "target_peak_gib": 24.0,
    }
    table = "\n".join(report.absolute_table(result))
    assert "gpu, v" in table and "goal <= 12 s: not met" in table and "capped at 24 GiB" in table
    with pytest.raises(SystemExit):
        cli.parse_args(["--absolute-variants", "hf,fast"])


@pytest.mark.slow  # importing TRL and building its trainer twice takes ~30 s
def test_trl_variants_run_the_same_shapes_as_the_floor():
    pytest.importorskip("trl")
    from tools.bench.trl_runner import run_trl

    workload = Workload(str(models.tiny(audio=False)), batch_size=1, group_size=2, new_tokens=3)
    prompts, paired = setup(workload)
    for variant in ("trl", "trl-compact"):
        run = run_trl(workload, prompts, STEPS, 1, "cpu", paired, variant)
        assert run.shapes == run.floor_shapes == [paired.shapes[0]] * STEPS
        assert run.phases["GRPOTrainer.transformers.generate"] > 0  # TRL's own timings, measured steps only


@pytest.mark.slow  # the whole command at a trivial size: every contender, the JSON and the README table
def test_the_command_writes_its_json_and_prints_the_machine_readable_line(tmp_path, capsys):
    pytest.importorskip("trl")
    out = tmp_path / "tiny.json"
    cli.main(
        [
            "--rounds",
            "2",
            "--steps",
            "1",
            "--warmup",
            "1",
            "--group-size",
            "2",
            "--new-tokens",
            "3",
            "--batch-size",
            "1",
            "--json",
            str(out),
            "--cpu",
            "-1",
        ]
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("ratio_vs_trl=") and "ratio_ci_high=" in last and "overhead_tight_pct=" in last
    doc = json.loads(out.read_text())
    assert set(doc["contenders"]) == {report.NAIVE, report.OURS, *[report.TRL_NAMES[v] for v in ("trl", "trl-compact")]}
    assert all(len(entry["rounds"]) == 2 for entry in doc["contenders"].values())
    assert "0.7x TRL" in report.readme_block([doc]) and doc["versions"]["trl"]


@pytest.mark.gpu
def test_full_7b_qlora_step_fits_the_memory_target_on_a_gpu():
    """The absolute GPU run: the whole 7B Qwen2-Audio shape, QLoRA NF4, G=8, 256 tokens, 30 s audio."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    ns = cli.parse_args(["--preset", "paper", "--device", "cuda"])
    result = absolute.absolute_run(cli.full_7b_workload(ns), steps=2, warmup=1, device="cuda")
    print("\n".join(report.absolute_table(result)))
    assert result["prompt_len"] > 750  # the 30 s clip's 750 audio tokens and the question
    assert result["peak_memory_gib"] <= absolute.TARGET_PEAK_GIB
