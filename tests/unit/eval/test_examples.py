"""Which examples an evaluation grades: stratified caps, lazy loading, unreadable clips left out or raised."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from audio_thinker.data.datasets import ManifestDataset
from audio_thinker.data.errors import AudioLoadError
from audio_thinker.eval.examples import LazyExamples, choose_indices, default_scorer, stratified_sample
from tests.helpers.benchmarks import EXCERPT, read_items, write_placeholder_audio


def test_stratified_sample_keeps_each_tasks_share_and_file_order():
    labels = ["sound"] * 6 + ["music"] * 3 + ["speech"] * 3  # sorted by task, as MMAU is
    picked = stratified_sample(labels, 4, seed=0)
    # shares 4*6/12 = 2, 4*3/12 = 1, 1: exact, no rounding needed
    assert Counter(labels[i] for i in picked) == {"sound": 2, "music": 1, "speech": 1}
    assert picked == sorted(picked)
    assert stratified_sample(labels, 4, seed=0) == picked  # seeded
    assert stratified_sample(labels, 12, seed=0) == list(range(12))


def test_stratified_sample_rounds_by_largest_remainder():
    labels = ["a"] * 5 + ["b"] * 3 + ["c"] * 2
    # n = 4: exact shares 2.0, 1.2, 0.8 -> floors 2, 1, 0 and the one left goes to c (remainder 0.8)
    assert Counter(labels[i] for i in stratified_sample(labels, 4, seed=3)) == {"a": 2, "b": 1, "c": 1}


@pytest.fixture
def excerpt(tmp_path):
    manifest = shutil.copy(EXCERPT, tmp_path / "mmau-test-mini.json")
    items = read_items(EXCERPT)
    write_placeholder_audio(items, tmp_path)
    (tmp_path / items[1]["audio_id"]).unlink()  # one clip missing
    return manifest, items


def test_max_examples_draws_across_tasks_not_the_head(excerpt):
    manifest, items = excerpt
    dataset = ManifestDataset(manifest, on_error="skip")
    picked = choose_indices(dataset, 6, seed=0)
    # The excerpt is in file order (sound first): its head has no music or speech; 17/41, 14/41, 10/41 of 6
    assert {items[i]["task"] for i in range(6)} == {"sound"}
    assert Counter(items[i]["task"] for i in picked) == {"sound": 3, "speech": 2, "music": 1}
    assert choose_indices(dataset, None) == list(range(41))


def test_an_unreadable_clip_is_left_out_and_the_others_load(excerpt):
    manifest, items = excerpt
    examples = LazyExamples(ManifestDataset(manifest, on_error="skip"), list(range(41)))
    loaded = list(examples)
    assert len(loaded) == 40 and items[1]["id"] not in {ex.id for ex in loaded}
    assert [s.id for s in examples.skipped] == [items[1]["id"]] and examples.skipped[0].kind == "missing_file"
    assert examples.items[items[0]["id"]] == (items[0], items[0]["choices"])  # the record, for the official file


def test_on_error_raise_stops_at_the_unreadable_clip(excerpt):
    manifest, items = excerpt
    examples = LazyExamples(ManifestDataset(manifest, on_error="raise"), list(range(41)))
    with pytest.raises(AudioLoadError, match=items[1]["id"]):
        list(examples)


def test_auto_scorer_is_mmau_for_mmau_files(excerpt, tmp_path):
    manifest, _ = excerpt
    assert default_scorer(ManifestDataset(manifest, on_error="skip")) == "mmau"
    jsonl = tmp_path / "own.jsonl"
    jsonl.write_text('{"id": "x", "audio": "a.wav", "question": "?", "choices": ["a", "b"], "answer": "a"}\n')
    assert default_scorer(ManifestDataset(jsonl)) == "choice"
