"""Rollout: micro-batches split the examples, select keeps each example's G completions together, state round-trips."""

from __future__ import annotations

import io

import pytest
import torch

from audio_thinker.rollout.batch import Rollout
from tests.helpers.rollouts import make_rollout


def test_micro_batches_split_the_examples_into_near_equal_runs():
    rollout = make_rollout([1] * 10, num_micro_batches=2)  # 5 examples of 2 completions
    assert [rollout.micro_batch_examples(i) for i in range(2)] == [range(0, 3), range(3, 5)]
    with pytest.raises(IndexError, match="micro-batch 2 of a rollout with 2"):
        rollout.micro_batch_examples(2)


def test_a_micro_batch_holds_its_examples_g_completions_and_trims_padding():
    lengths = [3, 1, 2, 2, 1, 1]  # 3 examples of 2 completions; the last example's completions are 1 token long
    rollout = make_rollout(lengths, width=4, advantages=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], num_micro_batches=2)
    first, second = rollout.micro_batch(0), rollout.micro_batch(1)
    assert [ex.id for ex in first.examples] == ["q0", "q1"] and [ex.id for ex in second.examples] == ["q2"]
    assert first.completion_ids.shape == (4, 3) and second.completion_ids.shape == (2, 1)  # columns trimmed
    assert torch.equal(first.completion_ids, rollout.completion_ids[:4, :3])
    assert torch.equal(second.advantages, torch.tensor([0.5, 0.6]))
    assert torch.equal(second.reward_terms["term"], torch.tensor([0.5, 0.6]))
    assert second.completions == rollout.completions[4:] and second.think_lengths == rollout.think_lengths[4:]
    assert first.num_micro_batches == second.num_micro_batches == 1
    assert second.encoding.input_ids.shape == (1, 1)


def test_example_of_and_expanded_examples_follow_the_group_layout():
    rollout = make_rollout([1] * 6, group_size=3)
    assert [rollout.example_of(i).id for i in range(6)] == ["q0"] * 3 + ["q1"] * 3
    assert [ex.id for ex in rollout.expanded_examples()] == ["q0"] * 3 + ["q1"] * 3
    assert rollout.size == 6


def test_state_dict_loads_with_weights_only_and_gives_the_same_rollout():
    rollout = make_rollout([2, 1, 3, 1], advantages=[1.0, -1.0, 0.5, -0.5], num_micro_batches=2)
    buffer = io.BytesIO()
    torch.save(rollout.state_dict(), buffer)
    buffer.seek(0)
    back = Rollout.from_state_dict(torch.load(buffer, weights_only=True))
    assert [ex.id for ex in back.examples] == ["q0", "q1"] and back.examples[0].audio is None
    assert torch.equal(back.completion_ids, rollout.completion_ids)
    assert torch.equal(back.advantages, rollout.advantages) and back.num_micro_batches == 2
    assert back.completions == rollout.completions


def test_to_moves_every_tensor_and_keeps_the_values():
    rollout = make_rollout([1, 2], advantages=[1.0, -1.0]).to("cpu")
    assert rollout.completion_ids.device.type == rollout.advantages.device.type == "cpu"
    assert torch.equal(rollout.reward_terms["term"], torch.tensor([1.0, -1.0]))
