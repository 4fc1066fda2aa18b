"""A stand-in for vLLM's OpenAI server (standard library only): the endpoints the `vllm` engine calls, with canned
answers, every request recorded, and switches for the faults the engine must survive or report.

In a thread: `FakeVLLM(model_root).start()` (tests of the client). As a process: copied into a fake venv as
`vllm/entrypoints/openai/api_server.py`, so `ServerProcess` starts it exactly as it starts vLLM (lifecycle tests);
`FAKE_VLLM_START_DELAY` (seconds before it listens) and `FAKE_VLLM_EXIT` (exit code at start) steer it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def completion_reply(body: dict, mode: str) -> dict:
    """Sample i of every prompt is [5 + i, 6, ..., stop] (max_tokens tokens), listed last to first."""
    n, length = body.get("n", 1), body.get("max_tokens", 4)
    stop = (body.get("stop_token_ids") or [2])[0]
    choices = []
    for i in range(n):
        ids = [5 + i] + [6] * (length - 2) + [stop]
        if mode == "out_of_vocab":
            ids[0] = 10**9
        logprobs = {"content": [{"token": f"token_id:{t}", "logprob": -0.25 * (k + 1)} for k, t in enumerate(ids)]}
        choices.append({"index": i, "token_ids": ids, "logprobs": logprobs})
    if mode == "too_few":
        choices = choices[:-1]
    return {"choices": list(reversed(choices)), "prompt_token_ids": None}  # any order is allowed


class QuietServer(ThreadingHTTPServer):
    """No traceback when a client gave up waiting (the timeout tests do that on purpose)."""

    def handle_error(self, request, client_address) -> None:
        pass


class FakeVLLM:
    """The fake server; `mode` picks the completion answers: "ok", "garbage", "too_few", "out_of_vocab", "500",
    or "hang" (answers after 4 s)."""

    def __init__(self, model_root: str, port: int = 0, mode: str = "ok") -> None:
        self.model_root, self.mode, self.requests, self.weights = model_root, mode, [], {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _answer(self, status: int, payload=None, raw: bytes | None = None) -> None:
                data = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else b"")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path, None))
                if self.path == "/health":
                    self._answer(200)
                elif self.path == "/v1/models":
                    self._answer(200, {"data": [{"id": "fake-model", "root": fake.model_root}]})
                else:
                    self._answer(404, {"error": "no such path"})

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(size) or b"null")
                fake.requests.append(("POST", self.path, body))
                if self.path == "/collective_rpc" and body.get("method") == "receive_weights":
                    self._answer(200, {"results": [fake.receive_weights(body["kwargs"]["channel"])]})
                elif self.path != "/v1/chat/completions":
                    self._answer(200)
                elif fake.mode == "garbage":
                    self._answer(200, raw=b"<html>proxy error</html>")
                elif fake.mode == "hang":
                    time.sleep(4)
                    self._answer(200, completion_reply(body, "ok"))
                elif fake.mode == "500":
                    self._answer(500, {"error": "EngineDeadError"})
                else:
                    self._answer(200, completion_reply(body, fake.mode))

        self.httpd = QuietServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def receive_weights(self, channel: str) -> dict:
        """The worker extension's RPC, loading into `self.weights` (torch imported here only: streamed sync)."""
        from audio_thinker.rollout.vllm_side.weight_stream_worker import WeightStreamWorker

        fake = self

        class Worker(WeightStreamWorker):
            device = "cpu"

            def reload_weights(self, weights_iterator) -> None:
                fake.weights = dict(weights_iterator)

        return Worker().receive_weights(channel)

    def start(self) -> FakeVLLM:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]


def main(argv: list[str]) -> None:
    """`python -m vllm.entrypoints.openai.api_server --model DIR --port P ...` as vLLM is started."""
    args = {flag: argv[i + 1] for i, flag in enumerate(argv[:-1]) if flag in ("--model", "--port")}
    print("fake vLLM starting:", " ".join(argv), flush=True)
    if os.environ.get("FAKE_VLLM_EXIT"):
        print("fake vLLM: failing at start on purpose", flush=True)
        sys.exit(int(os.environ["FAKE_VLLM_EXIT"]))
    time.sleep(float(os.environ.get("FAKE_VLLM_START_DELAY", "0")))
    server = FakeVLLM(args["--model"], int(args["--port"]))
    print("fake vLLM listening on", server.url, flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
