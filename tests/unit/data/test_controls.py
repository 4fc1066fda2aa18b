"""Audio controls: silence and shuffled clips leave questions and answers alone and take the sound away."""

from __future__ import annotations

import numpy as np
import pytest

from audio_thinker.data.controls import AudioControl, donors
from audio_thinker.data.datamodule import AudioQADataModule, SkipOnError, innermost_dataset
from audio_thinker.data.datasets import ManifestDataset
from audio_thinker.data.synthetic import SyntheticAudioQA
from tests.helpers.data import record, sine, write_audio, write_jsonl


def test_silence_keeps_the_question_and_the_clip_length():
    data = SyntheticAudioQA(size=6, seed=2)
    silent = AudioControl(data, "silence")
    for index in range(6):
        original, control = data[index], silent[index]
        assert (control.id, control.question, control.choices, control.answer) == (
            original.id,
            original.question,
            original.choices,
            original.answer,
        )
        assert control.audio.shape == original.audio.shape and not control.audio.any()
        assert control.meta["audio_control"] == "silence"


def test_shuffle_gives_every_example_another_examples_clip_once():
    data = SyntheticAudioQA(size=7, seed=2)
    shuffled = AudioControl(data, "shuffle", seed=5)
    lent = []
    for index in range(7):
        control = shuffled[index]
        assert control.answer == data[index].answer and control.meta["audio_from"] != control.id
        donor = next(j for j in range(7) if data[j].id == control.meta["audio_from"])
        assert np.array_equal(control.audio, data[donor].audio)
        lent.append(donor)
    assert sorted(lent) == list(range(7))  # a permutation: each clip lent exactly once
    assert np.array_equal(donors(7, 5), donors(7, 5)) and not np.array_equal(donors(7, 5), donors(7, 6))
    assert all((donors(n, 0) != np.arange(n)).all() for n in range(2, 30))  # nobody keeps their own clip


def test_bad_controls_fail_naming_the_key():
    with pytest.raises(ValueError, match="data.audio_control must be null, silence or shuffle; got 'noise'"):
        AudioQADataModule(SyntheticAudioQA(size=4), audio_control="noise")
    with pytest.raises(ValueError, match="at least two examples"):
        AudioControl(SyntheticAudioQA(size=1), "shuffle")


def test_the_datamodule_controls_training_and_validation_batches():
    module = AudioQADataModule(
        SyntheticAudioQA(size=4), SyntheticAudioQA(size=4, seed=9), batch_size=4, audio_control="silence"
    )
    for loader in (module.train_dataloader(), module.val_dataloader()):
        batch = next(iter(loader))
        assert len(batch["examples"]) == 4 and not any(ex.audio.any() for ex in batch["examples"])


def test_a_controlled_manifest_keeps_its_skip_accounting(tmp_path):
    write_audio(tmp_path / "tone.wav", sine(440.0, 0.5, 16_000))
    rows = [record(f"e{i}", "tone.wav") for i in range(3)] + [{"id": "broken"}]  # the last row has no fields
    manifest = ManifestDataset(write_jsonl(tmp_path / "m.jsonl", rows), on_error="skip")
    module = AudioQADataModule(manifest, batch_size=2, on_error="skip", audio_control="shuffle")
    assert isinstance(module.train_set, SkipOnError) and innermost_dataset(module.train_set) is manifest
    assert module.skip_ledger().records == 4  # the dropped row still counts against max_skip_fraction
    ids = sorted(ex.id for batch in module.train_dataloader() for ex in batch["examples"])
    assert ids == ["e0", "e1", "e2"]
