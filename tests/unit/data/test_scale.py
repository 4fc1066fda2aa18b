"""Data at scale: a 40k-row manifest opens without reading its clips, and ranks x workers read disjoint shards.

How long opening takes is measured by tools/bench_manifest.py (figures in the README), not asserted here.
"""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest
from torch.utils.data import Dataset, get_worker_info

import audio_thinker.data.datasets as datasets
from audio_thinker.data.datamodule import AudioQADataModule
from audio_thinker.data.datasets import ManifestDataset
from audio_thinker.data.generations import GenerationPlan
from tests.unit.data.helpers import record, sine, write_audio, write_jsonl

ROWS = 40_000


@pytest.fixture
def count_audio_reads(monkeypatch) -> list[str]:
    """Every audio file the dataset loads, in order (the real loader still runs)."""
    reads: list[str] = []

    def counting(path, *args, **kwargs):
        reads.append(str(path))
        return load_audio(path, *args, **kwargs)

    load_audio = datasets.load_audio
    monkeypatch.setattr(datasets, "load_audio", counting)
    return reads


@pytest.mark.parametrize("container", ["jsonl", "avqa_json_list"])
def test_a_40k_row_manifest_opens_without_reading_a_clip_and_a_batch_reads_only_its_own(
    tmp_path, count_audio_reads, container
):
    for clip in range(4):
        write_audio(tmp_path / f"clip{clip}.wav", sine(220.0 * (clip + 1), 0.2, 16_000))
    if container == "jsonl":
        manifest = write_jsonl(tmp_path / "train.jsonl", [record(f"ex{i}", f"clip{i % 4}.wav") for i in range(ROWS)])
    else:  # AVQA's own layout: one indented JSON list, the audio named by video_name
        items = [{"id": i, "video_name": f"clip{i % 4}", "question_text": "What sounds in the video?",
                  "multi_choice": ["dog", "car", "piano", "rain"], "answer": i % 4} for i in range(ROWS)]  # fmt: skip
        manifest = tmp_path / "train.json"
        manifest.write_text(json.dumps(items, indent=2))
    dataset = ManifestDataset(manifest)
    assert len(dataset) == ROWS and count_audio_reads == []  # nothing read at start
    # Each indented item spans 12 lines after the opening "[": item k starts on line 2 + 12 k.
    where = f"{ROWS}" if container == "jsonl" else f"{2 + 12 * (ROWS - 1)} (item {ROWS - 1})"
    assert dataset.examples[-1].meta["source"] == f"{manifest}:{where}"  # line numbers counted right to the end

    module = AudioQADataModule(dataset, batch_size=4)
    batch = next(iter(module.train_dataloader()))
    assert len(batch["examples"]) == 4 and len(count_audio_reads) == 4  # the batch's own clips only


class TaggedByWorker(Dataset):
    """Each item says which dataloader worker loaded it."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        example = self.dataset[index]
        return replace(example, meta={**example.meta, "worker": get_worker_info().id})


def test_ranks_and_their_workers_read_disjoint_shards_that_cover_the_epoch(tmp_path):
    write_audio(tmp_path / "tone.wav", sine(440.0, 0.2, 16_000))
    dataset = TaggedByWorker(ManifestDataset(write_jsonl(tmp_path / "m.jsonl", [record(f"e{i}", "tone.wav")
                                                                                 for i in range(48)])))  # fmt: skip
    loaded: dict[tuple[int, int], list[str]] = {}  # (rank, worker) -> ids it loaded
    for rank in (0, 1):
        module = AudioQADataModule(dataset, batch_size=2, num_workers=2, seed=3)
        module.trainer = SimpleNamespace(world_size=2, global_rank=rank, training=False)  # what DDP hands it
        module.set_generation_plan(GenerationPlan(micro_batches=2))  # 4 examples per generation
        for item in module.train_dataloader():
            for example in item.get("examples", []):
                loaded.setdefault((rank, example.meta["worker"]), []).append(example.id)
    assert sorted(loaded) == [(0, 0), (0, 1), (1, 0), (1, 1)]  # every worker of every rank had a share
    every_read = [i for ids in loaded.values() for i in ids]
    assert len(every_read) == len(set(every_read)) == 48  # no example read twice, none left out
    assert all(len(ids) == 12 for ids in loaded.values())  # 6 generations of 4 per rank, 3 per worker
