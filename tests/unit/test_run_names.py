"""Sweep folders are named after what varies between runs, safely and within a file name's length."""

from __future__ import annotations

from audio_thinker.run_names import MAX_NAME, fixed_keys, run_folder


def test_only_what_varies_names_the_folder():
    argv = ["-m", "loss.beta=0,0.04", "reward=rlvr,cesar", "trainer.max_steps=2", "data.train.path=/data/a.json"]
    assert fixed_keys(argv) == {"trainer.max_steps", "data.train.path"}
    job = ["loss.beta=0.04", "reward=cesar", "trainer.max_steps=2", "data.train.path=/data/a.json"]
    assert run_folder(3, job, argv) == "3_loss.beta=0.04,reward=cesar"


def test_a_sweepers_own_parameters_count_and_a_run_with_nothing_varying_is_its_number():
    # Optuna adds the sampled values of its configured search space; interval(...) on the command line is a sweep.
    argv = ["-m", "hparams_search=cesar_weights", "trainer.max_steps=2", "+reward.terms.length.weight=interval(0.1, 2)"]
    job = ["hparams_search=cesar_weights", "trainer.max_steps=2", "+reward.terms.length.weight=0.52",
           "reward.terms.keywords.weight=1.3"]  # fmt: skip
    assert run_folder(0, job, argv) == "0_+reward.terms.length.weight=0.52,reward.terms.keywords.weight=1.3"
    assert run_folder(1, ["trainer.max_steps=2"], ["-m", "trainer.max_steps=2"]) == "1"
    assert run_folder(2, ["data.train.path=/d/a.json"], []) == "2_data.train.path=_d_a.json"  # a path nests nothing


def test_long_names_are_cut_with_a_hash_that_keeps_them_unique():
    argv = ["-m", *(f"key{i}=a,b" for i in range(40))]
    first = run_folder(0, [f"key{i}=a" for i in range(40)], argv)
    second = run_folder(0, [f"key{i}=a" for i in range(39)] + ["key39=b"], argv)
    assert len(first) == len(second) == len("0_") + MAX_NAME and first != second
