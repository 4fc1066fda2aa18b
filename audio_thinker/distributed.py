"""Collectives the step-wide statistics need, through the Lightning strategy (identity on one process)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def sum_across_ranks(values: Sequence[float], strategy) -> list[float]:
    """Element-wise sum of `values` over every rank.

    A collective: every rank must call it, the same number of times and in the same order, whatever its data
    (a rank whose examples were all skipped passes zeros). `strategy` is the trainer's Lightning strategy.
    """
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=strategy.root_device)
    return strategy.reduce(tensor, reduce_op="sum").tolist()


def gather_objects(obj, strategy) -> list:
    """`obj` of every rank, in rank order (picklable objects; a collective under DDP, `[obj]` on one process)."""
    world_size = getattr(strategy, "world_size", 1)  # single-device strategies have none
    if world_size == 1 or not torch.distributed.is_initialized():
        return [obj]
    gathered = [None] * world_size
    torch.distributed.all_gather_object(gathered, obj)
    return gathered
