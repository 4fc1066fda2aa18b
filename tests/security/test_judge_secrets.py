"""Credentials written into a judge's URL (`http://user:key@host/v1`) appear in no log line, warning, error or
logged hyperparameter; a judge that fails names its URL (redacted), at the start and mid-run; and the start check
comes before the policy loads. (API keys given by `api_key_env`: tests/unit/rewards/judge/test_endpoint.py.)"""

from __future__ import annotations

import base64
import logging

import pytest

import audio_thinker.train as train_module
from audio_thinker.rewards.judge.endpoint import OpenAIChatJudge
from audio_thinker.rewards.judge.protocol import JudgeUnavailable
from audio_thinker.rewards.judge.terms import JudgeThinkReward
from tests.unit.rewards.judge.test_endpoint import serve

SECRET = "sk-in-the-url-0123456789"


def _with_credentials(url: str) -> str:
    return url.replace("http://", f"http://judge-user:{SECRET}@")


@pytest.fixture
def server(monkeypatch):
    fake = serve(monkeypatch)
    yield fake
    fake.shutdown()
    fake.server_close()


def test_a_down_judge_names_its_url_without_the_credentials(caplog):
    with caplog.at_level(logging.DEBUG):
        judge = OpenAIChatJudge(_with_credentials("http://127.0.0.1:9/v1"), "m", timeout_s=0.5, backoff_s=0.0)
        with pytest.raises(JudgeUnavailable) as err:
            judge.check()
    assert "judge endpoint http://***@127.0.0.1:9/v1/chat/completions (model 'm')" in str(err.value)
    assert "base_url carries credentials, shown here as ***" in caplog.text
    assert SECRET not in str(err.value) + caplog.text + judge.identity


def test_a_judge_failing_mid_run_stops_naming_its_url(server, make_inputs, violin, caplog):
    judge = OpenAIChatJudge(_with_credentials(server.base_url), "m", timeout_s=0.5, max_retries=0, backoff_s=0.0)
    term = JudgeThinkReward(judge, rubric="BAD_REQUEST {reasoning}", max_failure_rate=0.5, failure_window=1)
    term.name = "judge_think"
    with caplog.at_level(logging.DEBUG), pytest.raises(JudgeUnavailable) as err:
        term.score(make_inputs(["<think>Bowed.</think><answer>B</answer>"], violin))
    shown = server.base_url.replace("http://", "http://***@") + "/chat/completions"
    assert f"reward term 'judge_think' (judge endpoint {shown} (model 'm'))" in str(err.value)
    assert f"judge_think (judge endpoint {shown}" in caplog.text  # the step's warning too
    assert SECRET not in str(err.value) + caplog.text
    sent = base64.b64encode(f"judge-user:{SECRET}".encode()).decode()
    assert server.requests[-1]["auth"] == f"Basic {sent}"  # the credentials still reach the server, as basic auth


def test_the_judge_is_checked_before_the_policy_loads_and_hyperparameters_are_redacted(
    server, train_cfg, tmp_path, monkeypatch
):
    judges = [f"reward.terms.judge_{term}.judge" for term in ("consistency", "think")]
    down = ["reward=audio_thinker", "judge=endpoint"]
    for judge in judges:
        down += [f"{judge}.base_url={_with_credentials('http://127.0.0.1:9/v1')}", f"{judge}.max_retries=0"]
        down += [f"{judge}.timeout_s=1.0", f"{judge}.api_key_env=null"]
    built = []
    monkeypatch.setattr(train_module, "build_module", lambda cfg: built.append(cfg) or pytest.fail("policy first"))
    with pytest.raises(JudgeUnavailable, match=r"http://\*\*\*@127\.0\.0\.1:9/v1"):
        train_module.train(train_cfg(down))
    assert not built
    monkeypatch.undo()
    up = [o.replace("127.0.0.1:9/v1", server.base_url.removeprefix("http://")) for o in down]
    train_module.build_trainer(train_cfg([*up, "logger=csv"]))
    hparams = next(tmp_path.rglob("hparams.yaml")).read_text()
    assert "http://***@127.0.0.1" in hparams and SECRET not in hparams
