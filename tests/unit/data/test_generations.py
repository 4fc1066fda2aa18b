"""A generation's examples served as its micro-steps, and a checkpoint inside a generation resuming at the next one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from audio_thinker.data.datamodule import AudioQADataModule
from audio_thinker.data.generations import GenerationPlan
from audio_thinker.data.synthetic import SyntheticAudioQA


def _module(plan: GenerationPlan) -> AudioQADataModule:
    dm = AudioQADataModule(SyntheticAudioQA(size=8, seed=1), batch_size=2, seed=3)
    dm.trainer = SimpleNamespace(training=True, world_size=1, global_rank=0)
    dm.set_generation_plan(plan)
    return dm


def _shape(items: list[dict]) -> list[tuple[int, int | None]]:
    """(micro_step, examples in the item or None) per item."""
    return [(it["micro_step"], len(it["examples"]) if "examples" in it else None) for it in items]


def test_each_generation_is_drawn_once_and_served_as_micro_batches_times_passes():
    # 2 micro-batches of 2 prompts per generation (accumulation x steps_per_generation = 2), 2 passes (μ = 2).
    loader = _module(GenerationPlan(micro_batches=2, passes=2)).train_dataloader()
    items = list(loader)
    assert len(loader) == len(items) == 2 * 4  # 8 examples = 2 generations of 4, each served as 4 micro-steps
    assert _shape(items) == [(0, 4), (1, None), (2, None), (3, None)] * 2
    ids = [ex.id for it in items if "examples" in it for ex in it["examples"]]
    assert sorted(ids) == sorted(SyntheticAudioQA(size=8, seed=1)[i].id for i in range(8))  # every example used


def test_a_checkpoint_inside_a_generation_resumes_at_its_next_micro_step():
    plan = GenerationPlan(micro_batches=2, passes=2)
    dm = _module(plan)
    loader = dm.train_dataloader()
    items = iter(loader)
    for _ in range(6):  # generation 0 (4 items), then micro-steps 0 and 1 of generation 1
        dm.on_before_batch_transfer(next(items), 0)
    state = loader.state_dict()
    assert state == {"epoch": 0, "consumed": 2, "micro_step": 1, "micro_steps": 4}
    rest = list(_module(plan).train_dataloader())[6:]

    fresh = _module(plan)
    resumed = fresh.train_dataloader()
    resumed.load_state_dict(state)
    assert _shape(list(resumed)) == [(2, None), (3, None)] == _shape(rest)  # the epoch's last generation, finished


def test_resuming_inside_a_generation_with_another_plan_fails_naming_the_keys():
    dm = _module(GenerationPlan(micro_batches=2))
    loader = dm.train_dataloader()
    with pytest.raises(ValueError, match="rollout.steps_per_generation"):
        loader.load_state_dict({"epoch": 0, "consumed": 1, "micro_step": 1, "micro_steps": 4})


def test_plans_need_at_least_one_micro_batch_and_pass():
    with pytest.raises(ValueError, match="micro-batch"):
        GenerationPlan(micro_batches=0)
