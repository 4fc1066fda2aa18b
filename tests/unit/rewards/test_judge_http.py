"""The OpenAI-compatible judge against a tiny HTTP server on 127.0.0.1: replies, faults, retries, key handling."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from audio_thinker.rewards.judge.backends import OpenAIChatJudge
from audio_thinker.rewards.judge.cache import JudgeCache
from audio_thinker.rewards.judge.terms import JudgeThinkReward

SECRET = "sk-test-0123456789-do-not-leak"
KEY_ENV = "AUDIO_THINKER_TEST_JUDGE_KEY"


class FakeServer(ThreadingHTTPServer):
    """Records requests; the last user message picks the behaviour (see `Handler.do_POST`)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.seen = Counter()
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request, client_address) -> None:  # a client that timed out and left is expected here
        pass


class Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        with self.server.lock:
            self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            self.server.seen[prompt] += 1
            attempt = self.server.seen[prompt]
            self.server.in_flight += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        try:
            if prompt.startswith("SLOW"):
                time.sleep(1.0)  # far beyond the client's timeout
                self.reply(200, chat("Score: 0.9"))
            elif prompt.startswith("FAIL_ONCE") and attempt == 1:
                # Echo the Authorization header in the error body: the client must not log it.
                self.reply(500, f"internal error; you sent {self.headers.get('Authorization')}".encode())
            elif prompt.startswith("BAD_REQUEST"):
                self.reply(400, b'{"error": "bad request"}')
            elif prompt.startswith("NOT_JSON"):
                self.reply(200, b"<html>gateway</html>")
            elif prompt.startswith("GARBAGE"):
                self.reply(200, chat("lorem ipsum dolor"))
            elif prompt.startswith("PAUSE"):
                time.sleep(0.3)
                self.reply(200, chat(f"Score: 0.{prompt[-1]}"))
            elif prompt.startswith("ECHO"):
                self.reply(200, chat(prompt))
            else:
                self.reply(200, chat("Score: 0.8"))
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with self.server.lock:
                self.server.in_flight -= 1

    def reply(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def chat(content: str) -> bytes:
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).encode()


def user(text: str) -> list[dict]:
    return [{"role": "system", "content": "grader"}, {"role": "user", "content": text}]


@pytest.fixture
def server(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # 127.0.0.1 must never go through a proxy
    monkeypatch.setenv(KEY_ENV, SECRET)
    fake = FakeServer()
    thread = threading.Thread(target=fake.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    fake.shutdown()
    fake.server_close()


def make_judge(server: FakeServer, **kwargs) -> OpenAIChatJudge:
    settings = dict(model="judge-model", api_key_env=KEY_ENV, timeout_s=0.25, max_retries=1, backoff_s=0.01)
    return OpenAIChatJudge(server.base_url + "/", **{**settings, **kwargs})


def test_normal_reply_and_request_shape(server):
    judge = make_judge(server, max_new_tokens=8)
    assert judge.complete([user("rate this")]) == ["Score: 0.8"]
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"  # trailing "/" of base_url handled
    assert request["auth"] == f"Bearer {SECRET}"
    assert request["body"]["model"] == "judge-model" and request["body"]["max_tokens"] == 8
    assert request["body"]["messages"] == user("rate this") and request["body"]["temperature"] == 0.0


def test_key_is_read_at_call_time_and_optional(server, monkeypatch):
    judge = make_judge(server)
    monkeypatch.delenv(KEY_ENV)
    judge.complete([user("one")])
    monkeypatch.setenv(KEY_ENV, "sk-rotated")
    judge.complete([user("two")])
    assert [r["auth"] for r in server.requests] == [None, "Bearer sk-rotated"]


def test_slow_reply_times_out_retries_then_falls_back(server, make_inputs, violin, caplog):
    judge = make_judge(server)
    term = JudgeThinkReward(judge, rubric="SLOW {reasoning}")
    start = time.monotonic()
    with caplog.at_level(logging.WARNING):
        values = term.score(make_inputs(["<think>Bowed.</think><answer>B</answer>"], violin))
    assert values == [0.5]  # the documented fallback
    assert term.metrics()["judge/failures"] == 1.0
    assert server.seen["SLOW Bowed."] == 2  # the first attempt and one retry
    assert time.monotonic() - start < 1.0  # 2 × 0.25 s timeouts + 0.01 s back-off, not the server's 1 s sleep
    assert "attempt 2/2" in caplog.text and SECRET not in caplog.text


def test_http_500_then_success(server, caplog):
    judge = make_judge(server)
    with caplog.at_level(logging.WARNING):
        assert judge.complete([user("FAIL_ONCE please")]) == ["Score: 0.8"]
    assert server.seen["FAIL_ONCE please"] == 2
    assert "HTTP 500" in caplog.text
    assert "internal error" in caplog.text and SECRET not in caplog.text  # the echoed key was redacted


def test_client_errors_are_not_retried(server):
    judge = make_judge(server, max_retries=3)
    assert judge.complete([user("BAD_REQUEST")]) == [None]
    assert server.seen["BAD_REQUEST"] == 1


def test_garbage_replies_fall_back(server, make_inputs, violin):
    judge = make_judge(server)
    assert judge.complete([user("NOT_JSON")]) == [None]  # a 200 that is not a chat completion
    term = JudgeThinkReward(judge, rubric="GARBAGE {reasoning}", fallback_score=0.1)
    inputs = make_inputs(["<think>Bowed.</think><answer>B</answer>", "<answer>B</answer>"], violin)
    assert term.score(inputs) == pytest.approx([0.1, 0.1])  # garbage -> fallback; no-think -> mean of [0.1]
    assert term.metrics()["judge/failures"] == 1.0
    assert server.seen["GARBAGE Bowed."] == 1  # a readable body with a useless answer is not retried


def test_connection_refused_gives_none_without_leaking(server, caplog):
    judge = OpenAIChatJudge("http://127.0.0.1:9/v1", "m", api_key_env=KEY_ENV, timeout_s=0.5, backoff_s=0.0)
    with caplog.at_level(logging.WARNING):
        assert judge.complete([user("x")]) == [None]
    assert "attempt 3/3" in caplog.text and SECRET not in caplog.text
    assert SECRET not in repr(vars(judge))  # the key is never stored on the object


def test_concurrent_and_ordered(server):
    judge = make_judge(server, max_workers=4, batch_size=4, timeout_s=5.0)
    prompts = [user(f"PAUSE {i}") for i in range(6)]
    start = time.monotonic()
    replies = judge.complete(prompts)
    assert replies == [f"Score: 0.{i}" for i in range(6)]  # replies stay aligned with their prompts
    assert server.max_in_flight >= 2  # requests overlapped
    assert time.monotonic() - start < 6 * 0.3  # faster than one at a time


def test_cache_means_no_second_request(server, make_inputs, violin):
    term = JudgeThinkReward(make_judge(server), cache=JudgeCache())
    inputs = make_inputs(
        ["<think>Bowed.</think><answer>B</answer>", "<think>Plucked.</think><answer>A</answer>"], violin
    )
    assert term.score(inputs) == pytest.approx([0.8, 0.8])
    assert len(server.requests) == 2
    assert term.score(inputs) == pytest.approx([0.8, 0.8])
    assert len(server.requests) == 2  # nothing sent the second time
    assert term.metrics() == {"judge/failures": 0.0, "judge/cache_hits": 2.0}


def test_bad_settings_fail_fast():
    with pytest.raises(ValueError, match="timeout_s > 0"):
        OpenAIChatJudge("http://127.0.0.1:1/v1", "m", timeout_s=0)
