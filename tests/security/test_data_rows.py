"""Abuse by data: one huge manifest row must cost bounded memory, for `data check` and for loading a training run.

A JSONL row with a 50 MB question once took `data check --model tiny-qwen2-audio` past 10 GB and `train` past 5 GB
(issue 26, item 3). Now such a line is refused before it is parsed (`data.max_row_bytes`), named by file and line,
and follows `data.on_error`; with the limits switched off, a prompt that cannot fit the context is refused on its
character count before any tokenizer sees it. Peak memory is measured in a fresh interpreter after a warm-up on a
small manifest (`tests.helpers.memory`).
"""

from __future__ import annotations

import re

import pytest

from audio_thinker.cli import main
from tests.helpers.data import record, sine, write_audio, write_jsonl
from tests.helpers.memory import peak_rss_growth_mb

BOUND_MB = 200  # the work's own peak: a few MB of reading, far from the GBs of parsing and tokenising the row


def manifests(tmp_path, question_bytes: int) -> tuple:
    """(a small manifest, the same with a row whose question is `question_bytes` long on line 2)."""
    write_audio(tmp_path / "a.wav", sine(440.0, 0.5, 16_000))
    first, last = record("a", "a.wav"), record("b", "a.wav")
    small = write_jsonl(tmp_path / "small.jsonl", [first, last])
    huge = write_jsonl(tmp_path / "huge.jsonl", [first, record("huge", "a.wav", question="x" * question_bytes), last])
    return small, huge


DATA_CHECK = """
import contextlib, io, time
from audio_thinker.data.validate import data_check_main
def check(manifest, *flags):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = data_check_main([manifest, "--model", "tiny-qwen2-audio", *flags])
    return [code, out.getvalue()]
"""


def test_a_50_mb_question_is_refused_unread_by_data_check_in_bounded_memory(tmp_path):
    small, huge = manifests(tmp_path, 50 << 20)
    growth, (code, report, seconds) = peak_rss_growth_mb(
        "start = time.monotonic()\nresult = [*check(names['huge']), time.monotonic() - start]",
        DATA_CHECK + "check(names['small'])",
        small=small,
        huge=huge,
    )
    print(f"data check --model, a 50 MB row: peak RSS +{growth:.1f} MB in {seconds:.1f} s")
    assert code == 1 and f"{huge}:2: [row_too_long] the row is 52,428," in report and "usable examples: 2" in report
    assert growth < BOUND_MB and seconds < 30


def test_with_the_limits_off_a_prompt_longer_than_the_context_is_refused_before_tokenising(tmp_path):
    small, huge = manifests(tmp_path, 5 << 20)  # 5 MB: ~1.2 GB for the tokenizer (+240 MB per million characters)
    growth, (code, report) = peak_rss_growth_mb(
        "result = check(names['huge'], '--max-row-bytes', 'none', '--max-text-chars', 'none')",
        DATA_CHECK + "check(names['small'])",
        small=small,
        huge=huge,
    )
    print(f"data check --model, limits off, a 5 MB question: peak RSS +{growth:.1f} MB")
    assert code == 1 and f"{huge}:2 (id 'huge'): [prompt_too_long] the question and options are 5,242," in report
    assert growth < BOUND_MB  # the row itself is parsed (tens of MB); it is never rendered nor tokenised


LOAD_FOR_TRAIN = """
from pathlib import Path
from hydra.utils import instantiate
from audio_thinker.data.prompt_length import fit_datamodule
from audio_thinker.models.loading import build_policy
from tests.helpers.configs import compose_train
def load(manifest):
    overrides = ["data=manifest", f"data.train.path={manifest}", "data.val=null", "data.on_error=skip"]
    cfg = compose_train(Path(names["out"]), overrides)
    datamodule = instantiate(cfg.data)  # what train does, then the prompt lengths for its policy
    fit_datamodule(datamodule, policy, instantiate(cfg.rollout.prompt), cfg.rollout.max_new_tokens, 30)
    return datamodule
policy = build_policy(compose_train(Path(names["out"])).model, "cpu")
load(names["small"])
"""


def test_a_50_mb_question_is_skipped_and_counted_when_loading_for_training_in_bounded_memory(tmp_path):
    small, huge = manifests(tmp_path, 50 << 20)
    growth, (kept, skipped) = peak_rss_growth_mb(
        "datamodule = load(names['huge'])\nresult = [len(datamodule.train_set), datamodule.skip_ledger().by_kind()]",
        LOAD_FOR_TRAIN,
        small=small,
        huge=huge,
        out=tmp_path / "run",
    )
    print(f"loading for train, a 50 MB row: peak RSS +{growth:.1f} MB")
    assert kept == 2 and skipped == {"row_too_long": 1}
    assert growth < BOUND_MB


def test_a_50_mb_question_stops_training_before_the_model_loads_naming_its_line(tmp_path, capsys):
    _, huge = manifests(tmp_path, 50 << 20)
    with pytest.raises(SystemExit) as done:
        main(["train", "data=manifest", f"data.train.path={huge}", "data.val=null", f"hydra.run.dir={tmp_path}/run"])
    assert done.value.code == 1  # with data.on_error=raise (the default): one line naming the row, before any model
    named = rf"audio-thinker train: error: data.train: {re.escape(str(huge))}:2: the row is 52,4\d\d,\d\d\d bytes, more"
    assert re.search(named, capsys.readouterr().err)
