"""The resumable train order: positions by hand, and consumed (not prefetched) batches through a real loader."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from audio_thinker.data.datamodule import AudioQADataModule, ResumableSampler
from audio_thinker.data.generations import GenerationLoader
from audio_thinker.data.synthetic import SyntheticAudioQA


def _permutation(size: int, seed: int, epoch: int) -> list[int]:
    """The order DistributedSampler documents: randperm seeded with seed + epoch."""
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed + epoch)).tolist()


def test_positions_by_hand():
    sampler = ResumableSampler(list(range(7)), batch_size=2, seed=5)  # batches of 2, 2, 2, 1
    epoch0, epoch1 = _permutation(7, 5, 0), _permutation(7, 5, 1)
    assert list(sampler) == epoch0 and sampler.batches_per_epoch == 4
    sampler.consumed = 2  # two batches trained on
    assert list(sampler) == epoch0[4:] and len(sampler) == 7  # the length stays the epoch's (Lightning adds ready)
    assert sampler.state_dict() == {"epoch": 0, "consumed": 2}

    resumed = ResumableSampler(list(range(7)), batch_size=2, seed=5)
    resumed.load_state_dict({"epoch": 0, "consumed": 3})
    assert list(resumed) == epoch0[6:]
    resumed.set_epoch(0)  # Lightning calls this right after restoring: the position stays
    assert list(resumed) == epoch0[6:]
    resumed.set_epoch(1)
    assert list(resumed) == epoch1 and resumed.state_dict() == {"epoch": 1, "consumed": 0}


def test_a_checkpoint_after_an_epochs_last_batch_resumes_at_the_next_epoch():
    sampler = ResumableSampler(list(range(7)), batch_size=2, seed=5)
    sampler.load_state_dict({"epoch": 2, "consumed": 4})
    assert sampler.state_dict() == {"epoch": 3, "consumed": 0} and list(sampler) == _permutation(7, 5, 3)


def test_ranks_shard_the_same_order_and_resume_per_rank():
    ranks = [ResumableSampler(list(range(6)), batch_size=1, seed=0, num_replicas=2, rank=r) for r in (0, 1)]
    order = _permutation(6, 0, 0)
    assert [list(s) for s in ranks] == [order[0::2], order[1::2]]
    ranks[1].consumed = 2
    assert list(ranks[1]) == order[1::2][2:]


def _ids(batch: dict) -> list[str]:
    return [example.id for example in batch["examples"]]


def test_the_loader_state_counts_batches_taken_not_batches_prefetched():
    def module() -> AudioQADataModule:
        dm = AudioQADataModule(SyntheticAudioQA(size=10, seed=1), batch_size=2, num_workers=1, seed=3)
        dm.trainer = SimpleNamespace(training=True, world_size=1, global_rank=0)
        return dm

    whole = [_ids(batch) for batch in module().train_dataloader()]
    dm = module()
    loader = dm.train_dataloader()
    assert isinstance(loader, GenerationLoader)
    batches = iter(loader)
    for _ in range(2):  # the training loop takes two batches; the worker has fetched further ahead
        dm.on_before_batch_transfer(next(batches), 0)
    dm.trainer.training = False  # validation batches pass through the same hook and do not count
    dm.on_before_batch_transfer({"examples": []}, 0)
    state = loader.state_dict()
    assert state == {"epoch": 0, "consumed": 2, "micro_step": 0, "micro_steps": 1}

    fresh = module()
    resumed = fresh.train_dataloader()
    resumed.load_state_dict(state)
    assert [_ids(batch) for batch in resumed] == whole[2:]
