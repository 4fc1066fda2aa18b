"""AudioQADataModule: the batch contract, on_error skip/raise, seeded shuffling, and the manifest config."""

from __future__ import annotations

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import Dataset

from audio_thinker.data.datamodule import AudioQADataModule, SkipOnError, collate_examples
from audio_thinker.data.datasets import ManifestDataset
from audio_thinker.data.errors import AudioLoadError, SkippedExample
from audio_thinker.data.synthetic import SyntheticAudioQA
from audio_thinker.example import AudioQAExample
from tests.helpers.configs import CONFIGS
from tests.helpers.data import record, sine, write_audio, write_jsonl


@pytest.fixture
def manifest(tmp_path):
    """Five good examples and one corrupt audio file (id 'bad', line 4)."""
    write_audio(tmp_path / "tone.wav", sine(440.0, 0.5, 16_000))
    (tmp_path / "bad.wav").write_bytes(b"RIFF" + b"\x00" * 40)
    ids = ["e0", "e1", "e2", "bad", "e3", "e4"]
    return write_jsonl(tmp_path / "m.jsonl", [record(i, "bad.wav" if i == "bad" else "tone.wav") for i in ids])


def _drain(loader) -> tuple[list[str], int, list]:
    """The ids served, and the count and ids of the skipped items."""
    ids, skipped_ids = [], []
    for batch in loader:
        assert set(batch) == {"examples", "skips", "micro_step", "micro_steps"}
        assert all(isinstance(e, AudioQAExample) and e.audio is not None for e in batch["examples"])
        ids += [e.id for e in batch["examples"]]
        skipped_ids += [s.id for s in batch["skips"]]
    return ids, len(skipped_ids), skipped_ids


@pytest.mark.parametrize("num_workers", [0, 1])
def test_skip_counts_the_corrupt_file_and_loses_nothing_else(manifest, caplog, num_workers):
    module = AudioQADataModule(ManifestDataset(manifest), batch_size=4, on_error="skip", num_workers=num_workers)
    ids, skipped, skipped_ids = _drain(module.train_dataloader())
    assert sorted(ids) == ["e0", "e1", "e2", "e3", "e4"]
    assert (skipped, skipped_ids) == (1, [None])  # the generic wrapper does not know ids; its log line does
    if num_workers == 0:  # worker processes log to their own stderr
        assert "m.jsonl:4 (id 'bad')" in caplog.text and "bad.wav" in caplog.text


@pytest.mark.parametrize("num_workers", [0, 1])
def test_raise_stops_on_the_corrupt_file_even_through_a_worker(manifest, num_workers):
    module = AudioQADataModule(ManifestDataset(manifest), batch_size=6, on_error="raise", num_workers=num_workers)
    with pytest.raises(AudioLoadError, match="m.jsonl:4 \\(id 'bad'\\)"):
        _drain(module.train_dataloader())


def test_dataset_level_skip_keeps_the_id(manifest):
    module = AudioQADataModule(ManifestDataset(manifest, on_error="skip"), batch_size=6)
    assert _drain(module.train_dataloader())[1:] == (1, ["bad"])


def test_skip_wrapper_only_catches_data_errors():
    class Broken(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            if index == 0:
                raise AudioLoadError("x.wav: not found", kind="missing_file")
            raise KeyError("a bug, not bad data")

    wrapped = SkipOnError(Broken())
    assert wrapped[0] == SkippedExample(None, "Broken[0]", "x.wav: not found", "missing_file")
    with pytest.raises(KeyError):
        wrapped[1]


def test_collate_contract_and_audio_cap():
    long = AudioQAExample("a", "q?", "x", audio=np.ones(48_000, np.float32))
    short = AudioQAExample("b", "q?", "x", audio=np.ones(8_000, np.float32))
    batch = collate_examples([long, SkippedExample("c", "m.jsonl:3", "gone"), short], max_audio_seconds=1.0)
    assert [s.id for s in batch["skips"]] == ["c"]
    assert [e.audio.shape[0] for e in batch["examples"]] == [16_000, 8_000]
    assert batch["examples"][0].meta["truncated"] and "truncated" not in batch["examples"][1].meta
    stand_in = SkippedExample("c", "w", "r")
    assert collate_examples([stand_in]) == {"examples": [], "skips": [stand_in]}


def test_shuffling_is_seeded_and_the_old_constructor_still_works():
    def order(seed: int) -> list[str]:
        module = AudioQADataModule(SyntheticAudioQA(size=12, seed=3), SyntheticAudioQA(4, 5), 4, seed=seed)
        return _drain(module.train_dataloader())[0]

    assert order(0) == order(0) and sorted(order(0)) == sorted(order(1)) and order(0) != order(1)
    with pytest.raises(ValueError, match="on_error must be one of"):
        AudioQADataModule(SyntheticAudioQA(4), on_error="drop")


def test_manifest_config_instantiates_with_one_on_error_switch(manifest):
    cfg = OmegaConf.create({"seed": 0, "data": OmegaConf.load(CONFIGS / "data" / "manifest.yaml")})
    cfg.data.train.path = str(manifest)
    cfg.data.val = None
    cfg.data.on_error = "skip"
    cfg.data.max_audio_seconds = 0.25
    module = instantiate(cfg.data)
    assert isinstance(module.train_set.dataset, ManifestDataset) and module.train_set.dataset.on_error == "skip"
    ids, skipped, skipped_ids = _drain(module.train_dataloader())
    assert (len(ids), skipped, skipped_ids) == (5, 1, ["bad"])
    assert module.train_set.dataset[0].audio.shape == (4_000,)
