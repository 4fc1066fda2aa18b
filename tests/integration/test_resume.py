"""Exact resume: a run killed after a checkpoint and resumed logs what an uninterrupted run with the same seed logs.

On the CPU every operation here is deterministic (same thread count, same kernels), so the comparison is exact
equality of the logged float32 values: any lost RNG state, data position or optimizer state shows up as a
difference, not as noise to tolerate. TensorBoard files of a resumed run sit beside the killed run's in the same
directory. The resumed run first writes back its checkpoint's own step (whose scalars Lightning logs only after the
checkpoint is written) and tells TensorBoard to purge what the killed run logged from that step on: read as
TensorBoard reads the directory (`shown`), every step appears exactly once.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from audio_thinker.train import train
from tests.helpers.configs import compose_train
from tests.helpers.runs import RUN, TAGS, cli, finish, logged, output_of, wait_for

WALL_CLOCK = {"rollout/sync_seconds", "judge/seconds"}  # timings: every step must be there, the value is the clock's
# The killed runs and their reference validate where they checkpoint (steps 4 and 8), as the default config does
# (both every 20 steps): a checkpoint's own validation must survive the kill too.
VALIDATING = "trainer.val_check_interval=4"
VALIDATED = [0, 4, 8]  # x of each validation: before the first step, then after steps 4 and 8


def shown(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value), ...] of every scalar as TensorBoard shows the run: its files in order, purges applied."""
    accumulator = EventAccumulator(str(Path(run_dir, "tensorboard")), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {
        tag: [(e.step, None if tag in WALL_CLOCK else e.value) for e in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


def after(values: dict[str, dict[int, float]], first: int) -> dict[str, dict[int, float]]:
    """Only the steps from `first` on."""
    return {tag: {step: v for step, v in steps.items() if step >= first} for tag, steps in values.items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, subprocess.Popen]:
    """The uninterrupted run, started once and running alongside the runs the tests kill (`finish` it to read it)."""
    run_dir = tmp_path_factory.mktemp("resume") / "reference"
    return run_dir, cli(run_dir, VALIDATING)


def test_a_killed_run_resumes_with_the_losses_and_rewards_of_an_uninterrupted_one(tmp_path, reference):
    (reference, uninterrupted), killed_dir = reference, tmp_path / "killed"
    # Past the step-4 checkpoint the run takes step 4 (logging it), then pauses at step 5 until it is killed.
    paused = tmp_path / "paused"
    killed = cli(
        killed_dir,
        VALIDATING,
        "+callbacks.pause._target_=tests.helpers.callbacks.PauseAtStep",
        "+callbacks.pause.step=5",
        f"+callbacks.pause.marker={paused}",
    )
    try:
        wait_for(paused, killed)
        killed.send_signal(signal.SIGKILL)  # no handler, no cleanup: as a crash or an OOM kill
        assert killed.wait(timeout=60) == -signal.SIGKILL
    finally:
        killed.kill()
    checkpoint = torch.load(killed_dir / "checkpoints" / "last.ckpt", weights_only=True)
    resumed_from = checkpoint["global_step"]
    assert resumed_from == 4 and (killed_dir / "checkpoints" / "step000004.ckpt").is_file()
    position = {"epoch": 1, "consumed": 1, "micro_step": 0, "micro_steps": 1}
    assert checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [position]
    assert sorted(logged(killed_dir)["loss/kl"]) == [0, 1, 2, 3, 4]  # flushed before step 5; 4 will be logged again

    before = set(Path(killed_dir, "tensorboard").glob("events.out.tfevents.*"))
    output = finish(cli(killed_dir, VALIDATING, "ckpt_path=last"))
    finish(uninterrupted)
    assert f"Restoring states from the checkpoint path at {killed_dir / 'checkpoints' / 'last.ckpt'}" in output
    new_files = set(Path(killed_dir, "tensorboard").glob("events.out.tfevents.*")) - before
    resumed_only = logged(killed_dir, new_files)
    # Not from scratch: from the checkpoint's own step (written back from the checkpoint) to the end.
    assert all(min(steps) == resumed_from - 1 and max(steps) == 7 for steps in resumed_only.values())

    expected = logged(reference)
    assert set(expected) == set(TAGS) and all(sorted(steps) == list(range(8)) for steps in expected.values())
    assert resumed_only == after(expected, resumed_from - 1)
    assert logged(killed_dir) == expected  # all steps, each with its last value
    reference_shown = shown(reference)
    assert [step for step, _ in reference_shown["val/accuracy"]] == VALIDATED
    # As TensorBoard shows them: every tag, every step, once; val/* of step 4 (logged after the step-4 checkpoint,
    # then purged with the killed run's later events) included.
    assert shown(killed_dir) == reference_shown


def test_a_kill_right_after_a_checkpoint_write_loses_no_scalar_and_repeats_none(tmp_path, reference):
    killed_dir = tmp_path / "killed"
    plugin = "trainer.plugins=[{_target_:tests.helpers.plugins.KillAfterCheckpoint,step:4}]"
    killed = cli(killed_dir, VALIDATING, plugin)
    try:
        assert killed.wait(timeout=600) == -signal.SIGKILL, output_of(killed)
    finally:
        killed.kill()
    checkpoint = torch.load(killed_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 4
    # Step 4's training scalars (at x = 3) and its validation (at x = 4) went to the loggers before the checkpoint
    # was written, but not to disk: the checkpoint carries both.
    carried = checkpoint["callbacks"]["FlushLogsCallback"]
    assert carried["step"] == 3 and "loss/total" in carried["metrics"]
    assert "val/accuracy" in carried["later"][4]
    assert [step for step, _ in shown(killed_dir)["lr-AdamW"]][:4] == [0, 1, 2, 3]  # logged at the step's start

    finish(cli(killed_dir, VALIDATING, "ckpt_path=last"))
    finish(reference[1])
    expected = shown(reference[0])
    assert {"loss/total", "lr-AdamW", "epoch", "data/skipped", "reward/length"} <= set(expected)
    validation = {tag for tag in expected if tag.startswith("val/")}  # greedy val/* before step 1, after 4 and 8
    assert "val/accuracy" in validation and all([step for step, _ in expected[tag]] == VALIDATED for tag in validation)
    # Every training tag at every step, except a difficulty's think rate in a step that drew none of its examples.
    per_step = {tag for tag in set(expected) - validation if not tag.startswith("think/rate_by_difficulty/")}
    gaps = {tag: steps for tag in per_step if (steps := [s for s, _ in expected[tag]]) != [*range(8)]}
    assert not gaps, gaps
    assert shown(killed_dir) == expected  # every tag of every step, exactly once, with the uninterrupted values


@pytest.fixture
def one_thread():
    """One intra-op thread, as in the subprocess runs: far faster on a shared 2-core machine (no spinning)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train(run_dir: Path, *overrides: str) -> dict[str, dict[int, float]]:
    train(compose_train(run_dir, [*RUN, *overrides]))
    return logged(run_dir)


def test_resuming_in_process_mid_epoch_and_at_an_epoch_end_matches_the_uninterrupted_run(tmp_path, one_thread):
    expected = _train(tmp_path / "full")
    checkpoints = tmp_path / "full" / "checkpoints"
    positions = {
        step: torch.load(checkpoints / f"step{step:06d}.ckpt", weights_only=True)["loops"]["fit_loop"]["state_dict"]
        for step in (4, 6)
    }
    generation_done = {"micro_step": 0, "micro_steps": 1}  # one micro-step per generation, finished
    assert positions[4]["combined_loader"] == [{"epoch": 1, "consumed": 1, **generation_done}]  # 4 = 3 + 1 batches
    assert positions[6]["combined_loader"] == [{"epoch": 1, "consumed": 3, **generation_done}]  # epoch 1 done

    mid_epoch = _train(
        tmp_path / "mid", f"ckpt_path={checkpoints / 'step000004.ckpt'}", "callbacks.model_checkpoint.save_top_k=2"
    )
    assert mid_epoch == after(expected, 3)  # from the checkpoint's own step, written back from the checkpoint
    written = sorted(p.name for p in (tmp_path / "mid" / "checkpoints").glob("*.ckpt"))  # beside checkpoint-N/
    assert written == ["last.ckpt", "step000006.ckpt", "step000008.ckpt"]
    assert _train(tmp_path / "end", f"ckpt_path={checkpoints / 'step000006.ckpt'}") == after(expected, 5)


def test_a_checkpoint_inside_a_reused_generation_saves_it_and_resumes_exactly(tmp_path, one_thread):
    # Generations at steps 0, 2, 4 (μ = 2); a checkpoint every step, so steps 1, 3, 5 fall inside a generation.
    reuse = ["rollout.num_iterations=2", "trainer.max_steps=6", "callbacks.model_checkpoint.every_n_train_steps=1"]
    expected = _train(tmp_path / "full", *reuse)
    assert any(ratio != 1.0 for ratio in _ratios(tmp_path / "full"))  # the second use of a rollout is off-policy
    inside = torch.load(tmp_path / "full" / "checkpoints" / "step000003.ckpt", weights_only=True)
    assert inside["generation"]["micro_step"] == 0 and inside["generation"]["micro_steps"] == 2
    assert "generation" not in torch.load(tmp_path / "full" / "checkpoints" / "step000004.ckpt", weights_only=True)
    resumed = _train(tmp_path / "resumed", *reuse, f"ckpt_path={tmp_path / 'full' / 'checkpoints' / 'step000003.ckpt'}")
    assert resumed == after(expected, 2)  # from the checkpoint's own step, whose scalars it carries


def test_a_run_validating_between_its_checkpoints_resumes_exactly(tmp_path, one_thread):
    # Validation before step 1 and after step 5; checkpoints at 2, 4, 6, 8. Resumed from 4, the run must train as
    # the uninterrupted one did (a validation leaves data order, random streams and the weights' mode alone) and
    # validate after step 5 as it did. Step 6 ends an epoch without a validation: its checkpoint must not wait for
    # one (Lightning's default when validating every N batches across epochs), or it is never written.
    validating = ["trainer.val_check_interval=5"]
    _train(tmp_path / "full", *validating)
    checkpoints = tmp_path / "full" / "checkpoints"
    written = sorted(p.name for p in checkpoints.glob("*.ckpt"))  # beside checkpoint-N/
    assert written == ["last.ckpt", *(f"step{s:06d}.ckpt" for s in (2, 4, 6, 8))]
    _train(tmp_path / "resumed", *validating, f"ckpt_path={checkpoints / 'step000004.ckpt'}")
    full, resumed = shown(tmp_path / "full"), shown(tmp_path / "resumed")
    assert [step for step, _ in full["val/accuracy"]] == [0, 5]  # x = steps taken (step 6's training is at 5 too)
    from_3 = {tag: [p for p in points if p[0] >= 3] for tag, points in full.items()}
    # From the checkpoint's own x (3, written back from the checkpoint) on: every tag, val/* included, the same.
    assert resumed == {tag: points for tag, points in from_3.items() if points}


def test_a_checkpoint_at_a_validating_epoch_end_is_written_after_its_validation_and_resumes_exactly(
    tmp_path, one_thread
):
    # Epochs of 3 steps; validation and checkpoints both every 3 steps, so each falls on an epoch's last batch.
    at_epoch_ends = ["trainer.val_check_interval=3", "callbacks.model_checkpoint.every_n_train_steps=3"]
    _train(tmp_path / "full", *at_epoch_ends)
    checkpoint = torch.load(tmp_path / "full" / "checkpoints" / "step000003.ckpt", weights_only=True)
    assert "val/accuracy" in checkpoint["callbacks"]["FlushLogsCallback"]["later"][3]  # written after validating
    _train(tmp_path / "resumed", *at_epoch_ends, f"ckpt_path={tmp_path / 'full' / 'checkpoints' / 'step000003.ckpt'}")
    full, resumed = shown(tmp_path / "full"), shown(tmp_path / "resumed")
    assert [step for step, _ in full["val/accuracy"]] == [0, 3, 6]
    from_2 = {tag: [p for p in points if p[0] >= 2] for tag, points in full.items()}
    # The next epoch, neither step 3 nor its validation repeated, with step 3's val/* written back from the checkpoint.
    assert resumed == {tag: points for tag, points in from_2.items() if points}


def _ratios(run_dir: Path) -> list[float]:
    """Every logged `loss/ratio` (the mean importance ratio) of a run."""
    accumulator = EventAccumulator(str(next(Path(run_dir, "tensorboard").glob("events.out.tfevents.*"))))
    accumulator.Reload()
    return [e.value for e in accumulator.Scalars("loss/ratio")]
