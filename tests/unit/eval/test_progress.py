"""`audio-thinker eval` shows its progress: a bar on a terminal, a log line per batch otherwise."""

from __future__ import annotations

import io
import logging
import sys

from audio_thinker.eval.predict import predict
from audio_thinker.format.prompts import THINK
from tests.helpers.terminal import Terminal


def test_a_bar_counts_the_examples_on_a_terminal(tiny_policy, val_examples, monkeypatch, caplog):
    monkeypatch.setattr(sys, "stderr", Terminal())
    with caplog.at_level(logging.INFO, logger="audio_thinker.eval.predict"):
        predict(tiny_policy, iter(val_examples[:3]), THINK, max_new_tokens=2, batch_size=2, progress=True, total=3)
    assert "eval: 100%" in sys.stderr.getvalue() and "3/3" in sys.stderr.getvalue()
    assert "evaluated" not in caplog.text  # the bar replaces the log lines


def test_without_a_terminal_each_batch_logs_a_line(tiny_policy, val_examples, monkeypatch, caplog):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with caplog.at_level(logging.INFO, logger="audio_thinker.eval.predict"):
        predict(tiny_policy, val_examples[:3], THINK, max_new_tokens=2, batch_size=2, progress=True)
    assert sys.stderr.getvalue() == ""
    assert "evaluated 2/3 examples" in caplog.text and "evaluated 3/3 examples" in caplog.text
