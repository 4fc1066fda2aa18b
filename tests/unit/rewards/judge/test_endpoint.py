"""The OpenAI-compatible judge against a fault server on 127.0.0.1: down, 500, slow, trickling, garbage,
Retry-After, structured output, the start check, SIGTERM and key handling. Nothing leaves this machine."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from audio_thinker.rewards.judge.endpoint import OpenAIChatJudge
from audio_thinker.rewards.judge.protocol import JudgeInterrupted, JudgeUnavailable
from audio_thinker.rewards.judge.scores import VERDICT_GRAMMAR, score_grammar
from audio_thinker.rewards.judge.terms import JudgeThinkReward

SECRET = "sk-test-0123456789-do-not-leak"
KEY_ENV = "AUDIO_THINKER_TEST_JUDGE_KEY"
PROBE = 'Reply with the word "ok".'


class FaultServer(ThreadingHTTPServer):
    """Records requests; the last user message picks the behaviour (see `Handler.do_POST`)."""

    daemon_threads = True

    def __init__(self, refuse_schema: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.refuse_schema = refuse_schema
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.seen: Counter[str] = Counter()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.finished: Counter[str] = Counter()  # requests the handler wrote to the end
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request, client_address) -> None:  # a client that gave up and left is expected here
        pass


class Handler(BaseHTTPRequestHandler):
    server: FaultServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        with self.server.lock:
            self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            self.server.seen[prompt] += 1
            self.server.times[prompt].append(time.monotonic())
            attempt = self.server.seen[prompt]
            self.server.in_flight += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        try:
            self.respond(prompt, attempt, body)
            with self.server.lock:
                self.server.finished[prompt] += 1
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with self.server.lock:
                self.server.in_flight -= 1

    def respond(self, prompt: str, attempt: int, body: dict) -> None:
        structured = "response_format" in body
        if structured and self.server.refuse_schema:
            self.reply(400, b'{"error": "response_format is not supported"}')
        elif prompt == PROBE:
            self.reply(200, chat('{"reply": "ok"}' if structured else "ok"))
        elif prompt.startswith("SLOW"):
            time.sleep(3.0)  # far beyond the client's deadline
            self.reply(200, chat("9"))
        elif prompt.startswith("TRICKLE"):
            self.trickle(chat("9"), every_s=0.15)  # each read is quick, the whole reply takes seconds
        elif prompt.startswith("FAIL_ONCE") and attempt == 1:
            # Echo the Authorization header in the error body: the client must not log it.
            self.reply(500, f"internal error; you sent {self.headers.get('Authorization')}".encode())
        elif prompt.startswith("RATE_LIMITED") and attempt == 1:
            self.reply(429, b'{"error": "slow down"}', {"Retry-After": "1"})
        elif prompt.startswith("BAD_REQUEST"):
            self.reply(400, b'{"error": "bad request"}')
        elif prompt.startswith("NOT_JSON"):
            self.reply(200, b"<html>gateway</html>")
        elif prompt.startswith("GARBAGE"):
            self.reply(200, chat("lorem ipsum dolor"))
        elif prompt.startswith("PAUSE"):
            time.sleep(0.2)
            self.reply(200, chat(prompt[-1]))
        else:
            self.reply(200, chat('{"reply": "8"}' if structured else "Score: 8"))

    def reply(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def trickle(self, payload: bytes, every_s: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        for byte in payload:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(every_s)


def chat(content: str) -> bytes:
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).encode()


def user(text: str) -> list[dict]:
    return [{"role": "system", "content": "grader"}, {"role": "user", "content": text}]


def serve(monkeypatch, **kwargs) -> FaultServer:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # 127.0.0.1 must never go through a proxy
    monkeypatch.setenv(KEY_ENV, SECRET)
    fake = FaultServer(**kwargs)
    threading.Thread(target=fake.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return fake


@pytest.fixture
def server(monkeypatch):
    fake = serve(monkeypatch)
    yield fake
    fake.shutdown()
    fake.server_close()


def make_judge(server: FaultServer, **kwargs) -> OpenAIChatJudge:
    settings = dict(model="judge-model", api_key_env=KEY_ENV, timeout_s=0.4, max_retries=1, backoff_s=0.01)
    return OpenAIChatJudge(server.base_url + "/", **{**settings, **kwargs})


def test_normal_reply_and_request_shape(server):
    judge = make_judge(server, max_new_tokens=8)
    assert judge.complete([user("rate this")]) == ["Score: 8"]
    probe, request = server.requests  # the start check's tiny request, then the real one
    assert probe["body"]["messages"][-1]["content"] == PROBE
    assert request["path"] == "/v1/chat/completions"  # trailing "/" of base_url handled
    assert request["auth"] == f"Bearer {SECRET}"
    assert request["body"]["model"] == "judge-model" and request["body"]["max_tokens"] == 8
    assert request["body"]["messages"] == user("rate this") and request["body"]["temperature"] == 0.0
    assert "response_format" not in request["body"]  # no grammar, no schema


def test_structured_output_asks_for_the_grammar(server):
    judge = make_judge(server)
    assert judge.complete([user("rate this")], grammar=score_grammar(10)) == ["8"]  # {"reply": "8"} unwrapped
    schema = server.requests[-1]["body"]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["reply"]["enum"] == [str(n) for n in range(11)]


def test_a_server_refusing_structured_output_is_parsed_as_text(monkeypatch, caplog):
    server = serve(monkeypatch, refuse_schema=True)
    judge = make_judge(server)
    with caplog.at_level(logging.INFO):
        assert judge.complete([user("rate this")], grammar=VERDICT_GRAMMAR) == ["Score: 8"]
    assert not judge.structured_output and "refused structured output" in caplog.text
    assert "response_format" not in server.requests[-1]["body"]
    server.shutdown()


def test_key_is_read_at_call_time_and_an_unset_variable_is_reported_once(server, monkeypatch, caplog):
    judge = make_judge(server)
    monkeypatch.delenv(KEY_ENV)
    with caplog.at_level(logging.WARNING):
        judge.complete([user("one")])
        judge.complete([user("two")])
    assert caplog.text.count(f"${KEY_ENV} is unset") == 1
    monkeypatch.setenv(KEY_ENV, "sk-rotated")
    judge.complete([user("three")])
    assert [r["auth"] for r in server.requests[1:]] == [None, None, "Bearer sk-rotated"]


def test_a_key_given_as_api_key_env_is_refused_without_echoing_it():
    with pytest.raises(ValueError, match="NAME of an environment variable") as caught:
        OpenAIChatJudge("http://127.0.0.1:9/v1", "m", api_key_env=SECRET)
    assert SECRET not in str(caught.value) and ".hydra" in str(caught.value)


def test_a_down_endpoint_fails_at_start_naming_the_url():
    judge = OpenAIChatJudge("http://127.0.0.1:9/v1", "m", api_key_env=None, timeout_s=0.5, backoff_s=0.0)
    with pytest.raises(JudgeUnavailable, match=r"http://127\.0\.0\.1:9/v1/chat/completions.*connection failed"):
        judge.check()


def test_slow_reply_hits_the_deadline_is_retried_then_fails(server, make_inputs, violin, caplog):
    term = JudgeThinkReward(make_judge(server), rubric="SLOW {reasoning}")
    term.name = "judge_think"
    with caplog.at_level(logging.WARNING):
        values = term.score(make_inputs(["<think>Bowed.</think><answer>B</answer>"], violin))
    assert values == [None]  # nothing judged successfully: not applicable
    assert term.metrics()["judge/transport_failures"] == 1.0 and term.metrics()["judge/parse_failures"] == 0.0
    assert server.seen["SLOW Bowed."] == 2  # the first attempt and one retry
    assert server.finished["SLOW Bowed."] == 0  # the client gave up before the server answered
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]  # one line for the step
    assert "timeout ×1" in line and "may still be running on the server" in line and "max_workers" in line


def test_a_trickling_reply_is_cut_at_the_overall_deadline(server):
    judge = make_judge(server, max_retries=0)
    assert judge.complete([user("TRICKLE")]) == [None]  # each byte comes fast; the whole reply takes ~8 s
    assert judge.last_report.failures == {"timeout": 1} and judge.last_report.abandoned == 1
    assert server.finished["TRICKLE"] == 0  # the client left mid-body, long before the server was done


def test_http_500_then_success_without_leaking_the_key(server, caplog):
    judge = make_judge(server)
    with caplog.at_level(logging.DEBUG):
        assert judge.complete([user("FAIL_ONCE please")]) == ["Score: 8"]
    assert server.seen["FAIL_ONCE please"] == 2 and SECRET not in caplog.text


def test_retry_after_is_honoured(server):
    judge = make_judge(server, backoff_s=0.01, timeout_s=2.0)
    assert judge.complete([user("RATE_LIMITED")]) == ["Score: 8"]
    first, second = server.times["RATE_LIMITED"]
    assert second - first >= 0.9  # the server asked for 1 s; the back-off alone would be 0.01 s


def test_client_errors_and_garbage_are_not_retried(server):
    judge = make_judge(server, max_retries=3)
    assert judge.complete([user("BAD_REQUEST"), user("NOT_JSON")]) == [None, None]
    assert server.seen["BAD_REQUEST"] == 1 and server.seen["NOT_JSON"] == 1
    assert judge.last_report.failures == {"HTTP 400": 1, "unreadable reply": 1}


def test_garbage_text_is_a_parse_failure_not_a_transport_failure(server, make_inputs, violin):
    term = JudgeThinkReward(make_judge(server), rubric="GARBAGE {reasoning}")
    term.score(make_inputs(["<think>Bowed.</think><answer>B</answer>"], violin))
    assert term.metrics()["judge/parse_failures"] == 1.0 and term.metrics()["judge/transport_failures"] == 0.0


def test_identical_prompts_in_one_batch_are_sent_once(server, make_inputs, violin):
    term = JudgeThinkReward(make_judge(server))
    values = term.score(make_inputs(["<think>Bowed.</think><answer>B</answer>"] * 3, violin))
    assert values == pytest.approx([0.8] * 3)
    assert len(server.requests) == 2  # the start check and one judge request
    assert term.score(make_inputs(["<think>Bowed.</think><answer>B</answer>"], violin)) == pytest.approx([0.8])
    assert len(server.requests) == 2  # the second time from the cache


def test_max_workers_bounds_requests_in_flight_and_order_is_kept(server):
    judge = make_judge(server, max_workers=2, timeout_s=5.0)
    replies = judge.complete([user(f"PAUSE {i}") for i in range(5)])
    assert replies == [str(i) for i in range(5)]  # replies stay aligned with their prompts
    assert server.max_in_flight == 2  # overlapped, but never more than the server's slots


def test_sigterm_cancels_pending_requests_and_stops(server):
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))  # like Lightning's
    judge = make_judge(server, timeout_s=30.0, max_retries=5)
    judge.check()
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        timer.start()
        with pytest.raises(JudgeInterrupted, match="SIGTERM"):
            judge.complete([user("SLOW one"), user("SLOW two")])
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    assert received == [signal.SIGTERM]  # the run's own handler still hears about it
    assert server.finished["SLOW one"] == 0  # returned before the server's 3 s answer, no retry started
    assert server.seen["SLOW one"] == 1


def test_bad_settings_fail_fast():
    with pytest.raises(ValueError, match="timeout_s > 0"):
        OpenAIChatJudge("http://127.0.0.1:1/v1", "m", timeout_s=0)
