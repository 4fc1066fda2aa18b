"""Sweep folders are named after what varies between runs, safely and within a file name's length."""

from __future__ import annotations

from audio_thinker.run_names import ARGV_ENV, MAX_NAME, fixed_keys, remember_command_line, run_folder


def test_only_what_varies_names_the_folder():
    argv = ["-m", "loss.beta=0,0.04", "reward=rlvr,cesar", "trainer.max_steps=2", "data.train.path=/data/a.json"]
    assert fixed_keys(argv) == {"trainer.max_steps", "data.train.path"}
    job = ["loss.beta=0.04", "reward=cesar", "trainer.max_steps=2", "data.train.path=/data/a.json"]
    assert run_folder(3, job, argv) == "3_loss.beta=0.04,reward=cesar"


def test_a_deleted_key_is_fixed_however_the_launcher_passes_it_on():
    argv = ["-m", "loss.beta=0,0.04", "~reward.terms.format"]
    assert fixed_keys(argv) == {"reward.terms.format"}
    # The basic launcher hands the job `~key`; joblib and submitit hand it `~key=null`.
    for deleted in ("~reward.terms.format", "~reward.terms.format=null"):
        assert run_folder(0, ["loss.beta=0", deleted], argv) == "0_loss.beta=0"


def test_a_sweepers_own_parameters_count_and_a_run_with_nothing_varying_is_its_number():
    # Optuna adds the sampled values of its configured search space; interval(...) on the command line is a sweep.
    argv = ["-m", "hparams_search=cesar_weights", "trainer.max_steps=2", "+reward.terms.length.weight=interval(0.1, 2)"]
    job = [
        "hparams_search=cesar_weights",
        "trainer.max_steps=2",
        "+reward.terms.length.weight=0.52",
        "reward.terms.keywords.weight=1.3",
    ]
    assert run_folder(0, job, argv) == "0_+reward.terms.length.weight=0.52,reward.terms.keywords.weight=1.3"
    assert run_folder(1, ["trainer.max_steps=2"], ["-m", "trainer.max_steps=2"]) == "1"
    assert run_folder(2, ["data.train.path=/d/a.json"], []) == "2_data.train.path=_d_a.json"  # a path nests nothing


def test_long_names_are_cut_with_a_hash_that_keeps_them_unique():
    argv = ["-m", *(f"key{i}=a,b" for i in range(40))]
    first = run_folder(0, [f"key{i}=a" for i in range(40)], argv)
    second = run_folder(0, [f"key{i}=a" for i in range(39)] + ["key39=b"], argv)
    assert len(first) == len(second) == len("0_") + MAX_NAME and first != second


def test_a_job_in_another_process_names_its_folder_from_the_command_line_the_cli_left(monkeypatch):
    # A submitit or Slurm job runs in a process whose sys.argv is the launcher's, not the user's command line.
    monkeypatch.setattr("sys.argv", ["submitit/_submit.py", "/tmp/job_folder"])
    monkeypatch.delenv(ARGV_ENV, raising=False)  # restored after the test
    assert run_folder(1, ["loss.beta=0.04", "trainer.max_steps=2"]) != "1_loss.beta=0.04"  # sys.argv alone: lost
    remember_command_line(["-m", "loss.beta=0,0.04", "trainer.max_steps=2"])
    assert run_folder(1, ["loss.beta=0.04", "trainer.max_steps=2"]) == "1_loss.beta=0.04"
