"""Sweep folders are named after the swept keys only, safely and within a file name's length."""

from __future__ import annotations

from audio_thinker.run_names import MAX_NAME, swept_keys, swept_name


def test_only_the_swept_keys_name_the_folder():
    argv = ["-m", "loss.beta=0,0.04", "reward=rlvr,cesar", "trainer.max_steps=2", "data.train.path=/data/a.json"]
    assert swept_keys(argv) == {"loss.beta", "reward"}
    job = ["loss.beta=0.04", "reward=cesar", "trainer.max_steps=2", "data.train.path=/data/a.json"]
    assert swept_name(job, argv) == "loss.beta=0.04,reward=cesar"


def test_range_and_choice_sweeps_count_and_without_sweeps_every_override_names_it():
    assert swept_keys(["-m", "optimizer.lr=choice(1e-5,1e-4)", "seed=range(0,3)", "x=1"]) == {"optimizer.lr", "seed"}
    assert swept_name(["data.train.path=/d/a.json", "seed=1"], ["--multirun"]) == "data.train.path=_d_a.json,seed=1"


def test_long_names_are_cut_with_a_hash_that_keeps_them_unique():
    argv = ["-m", *(f"key{i}=a,b" for i in range(40))]
    first = swept_name([f"key{i}=a" for i in range(40)], argv)
    second = swept_name([f"key{i}=a" for i in range(39)] + ["key39=b"], argv)
    assert len(first) == len(second) == MAX_NAME and first != second
