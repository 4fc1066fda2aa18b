"""The endpoint judge: an OpenAI-compatible `/chat/completions` server, through httpx with tenacity retries.

Concurrency, deadlines and cancellation come from asyncio: every attempt has an overall deadline (a server that
trickles bytes cannot hold a request past it), at most `max_workers` attempts run at once, and SIGTERM cancels
what is pending so the run stops at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from audio_thinker.redaction import redact_urls
from audio_thinker.rewards.judge.protocol import JudgeInterrupted, JudgeUnavailable, Messages, TransportReport, plain
from audio_thinker.rewards.judge.scores import ReplyGrammar

log = logging.getLogger(__name__)
T = TypeVar("T")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RETRY_STATUS = {408, 409, 425, 429}  # and every 5xx
_WARNED_UNSET: set[str] = set()  # environment variables already reported unset in this process
_PROBE = ReplyGrammar(("ok",))


class _Unreadable(Exception):
    """A 200 whose body is not a chat completion: not retried (a server answering garbage answers it again)."""


class OpenAIChatJudge:
    """A judge behind an OpenAI-compatible `POST {base_url}/chat/completions` (vLLM, llama.cpp, TGI, hosted APIs).

    Each conversation is one request. Each attempt must deliver its whole reply within `timeout_s` (an overall
    deadline, not a per-read one). Timeouts, connection errors, HTTP 408/409/425/429 and 5xx are retried up to
    `max_retries` times, waiting `backoff_s`, 2·backoff_s, ... or what the server's `Retry-After` asks (at most
    `max_wait_s`); other HTTP errors and unreadable bodies are not retried. A prompt that never succeeds gives
    None, and the reason goes into `last_report` (the terms log one summary line per step, not one per attempt).

    A timed-out attempt is abandoned on our side, but the server may still be computing it: set `max_workers` to
    the number of requests the server runs in parallel (llama.cpp `--parallel`, vLLM `--max-num-seqs`), or
    retries queue behind abandoned work. With a `ReplyGrammar` and `structured_output`, the request asks for JSON
    `{"reply": <choice>}` (`response_format` with a JSON schema); `check()` turns it off, with one log line, for a
    server that refuses it, and the terms' regex parsing is the fallback either way.

    The API key is read from the environment variable `api_key_env` at each call, sent only as
    `Authorization: Bearer …`, and never stored, logged or put in a message; an unset variable sends no header
    (a local vLLM needs none) and is reported once.

    Args:
        base_url: server root including the version, e.g. "http://localhost:8000/v1".
        model: the model name the server expects.
        api_key_env: NAME of the environment variable holding the key (None: never send one).
        timeout_s: overall deadline of one attempt (connect, send, wait, read the whole reply).
        max_retries: extra attempts after the first.
        backoff_s: wait before the first retry; doubles each retry.
        batch_size: conversations started together; bounds queued work on huge batches.
        max_workers: attempts in flight at once: the server's parallel slots.
        max_new_tokens: sent as `max_tokens`.
        temperature: sampling temperature (0: greedy, so replies are cacheable).
        extra_body: extra JSON fields, e.g. {"chat_template_kwargs": {"enable_thinking": false}} for vLLM.
        structured_output: ask for JSON-schema constrained replies when the term gives a grammar.
        max_wait_s: longest wait before a retry, whatever `Retry-After` says.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout_s: float = 30.0,
        max_retries: int = 2,
        backoff_s: float = 1.0,
        batch_size: int = 64,
        max_workers: int = 8,
        max_new_tokens: int = 32,
        temperature: float = 0.0,
        extra_body: dict[str, Any] | None = None,
        structured_output: bool = True,
        max_wait_s: float = 60.0,
    ) -> None:
        if timeout_s <= 0 or max_retries < 0 or backoff_s < 0 or batch_size < 1 or max_workers < 1 or max_wait_s < 0:
            raise ValueError(
                "OpenAIChatJudge needs timeout_s > 0, max_retries >= 0, backoff_s >= 0, batch_size >= 1, "
                f"max_workers >= 1 and max_wait_s >= 0; got {timeout_s}, {max_retries}, {backoff_s}, {batch_size}, "
                f"{max_workers}, {max_wait_s}"
            )
        if api_key_env is not None and not _ENV_NAME.fullmatch(api_key_env):
            raise ValueError(
                "OpenAIChatJudge.api_key_env must be the NAME of an environment variable holding the key, e.g. "
                "OPENAI_API_KEY; the value given is not a variable name and is not shown here, because it may be the "
                "key itself: if so, export it as a variable, set api_key_env to that name, and delete this run's "
                ".hydra/ folder, where Hydra has already written it"
            )
        self.base_url = base_url.rstrip("/")
        self.shown_url = redact_urls(self.base_url + "/chat/completions")  # for every message and log line
        # Credentials in the URL travel as basic auth, so the URL requests go to (which httpx logs) has none.
        url = httpx.URL(self.base_url + "/chat/completions")
        self.url = str(url.copy_with(userinfo=b""))
        self._basic_auth = (url.username, url.password) if url.userinfo else None
        if self._basic_auth:
            log.warning(
                "judge %s: base_url carries credentials, shown here as ***; they are also in this run's "
                ".hydra/config.yaml: for an API key, prefer api_key_env",
                self.shown_url,
            )
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.batch_size = batch_size
        self.max_workers = max_workers
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.extra_body = plain(extra_body or {})
        self.structured_output = structured_output
        self.max_wait_s = max_wait_s
        self.last_report = TransportReport()
        self._checked = False

    @property
    def identity(self) -> str:
        """What makes this judge's replies differ from another's (part of the cache key)."""
        return f"openai:{redact_urls(self.base_url)}:{self.model}:{self.temperature}"

    @property
    def description(self) -> str:
        """The judge as error messages name it (credentials in the URL redacted)."""
        return f"judge endpoint {self.shown_url} (model {self.model!r})"

    def check(self) -> None:
        """A tiny request, once: a clear error naming the URL if the server cannot answer; structured output probed."""
        if self._checked:
            return
        api_key = self._api_key()
        probe = [{"role": "user", "content": 'Reply with the word "ok".'}]
        error = _run(self._probe(probe, api_key, _PROBE if self.structured_output else None))
        refused = error and self.structured_output and error.startswith("HTTP 400")
        # A server that only refuses response_format still judges: parse its free text instead.
        if refused and _run(self._probe(probe, api_key, None)) is None:
            log.info("judge %s refused structured output (%s): replies are parsed from text", self.shown_url, error)
            self.structured_output, error = False, None
        if error:
            raise JudgeUnavailable(
                f"{self.description} did not answer a test request: {error}. Start the "
                "server, or fix base_url / model / api_key_env (reward.terms.<judge term>.judge.*), or use the "
                "offline judge=smollm2"
            )
        self._checked = True

    def complete(self, prompts: list[Messages], grammar: ReplyGrammar | None = None) -> list[str | None]:
        """One reply (or None) per conversation; failures are described in `last_report`."""
        if not prompts:
            return []
        self.check()
        report = TransportReport()
        replies = _run(self._complete_all(prompts, grammar, self._api_key(), report))
        self.last_report = report
        return replies

    def _api_key(self) -> str | None:
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key and self.api_key_env not in _WARNED_UNSET:
            _WARNED_UNSET.add(self.api_key_env)
            log.warning("judge %s: $%s is unset, so requests carry no API key", self.shown_url, self.api_key_env)
        return key or None

    def _client(self, api_key: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=self.max_workers, max_keepalive_connections=self.max_workers)
        # follow_redirects=False: a redirect must not carry the Authorization header to another host.
        return httpx.AsyncClient(
            headers=headers, auth=self._basic_auth, timeout=self.timeout_s, limits=limits, follow_redirects=False
        )

    async def _probe(self, messages: Messages, api_key: str | None, grammar: ReplyGrammar | None) -> str | None:
        """None if the server answers one request (with retries), else why not."""
        report = TransportReport()
        async with self._client(api_key) as client:
            reply = await self._ask(client, asyncio.Semaphore(1), messages, grammar, api_key, report, max_tokens=16)
        return None if reply is not None else report.describe()

    async def _complete_all(
        self, prompts: list[Messages], grammar: ReplyGrammar | None, api_key: str | None, report: TransportReport
    ) -> list[str | None]:
        slots = asyncio.Semaphore(self.max_workers)
        replies: list[str | None] = []
        async with self._client(api_key) as client:
            for start in range(0, len(prompts), self.batch_size):
                chunk = prompts[start : start + self.batch_size]
                asks = [self._ask(client, slots, m, grammar, api_key, report) for m in chunk]
                replies.extend(await asyncio.gather(*asks))
        return replies

    async def _ask(
        self,
        client: httpx.AsyncClient,
        slots: asyncio.Semaphore,
        messages: Messages,
        grammar: ReplyGrammar | None,
        api_key: str | None,
        report: TransportReport,
        max_tokens: int | None = None,
    ) -> str | None:
        """One conversation with retries; None (and the reason in `report`) when every attempt failed."""
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens or self.max_new_tokens}
        body.update({"temperature": self.temperature, **self.extra_body})
        structured = grammar is not None and self.structured_output
        if structured:
            schema = {"name": "judge_reply", "strict": True, "schema": grammar.json_schema()}
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    async with slots:
                        content = await self._attempt(client, body, report)
            return _unwrap(content) if structured else content
        except (httpx.HTTPError, asyncio.TimeoutError, _Unreadable) as error:
            reason, detail = _describe(error, self.timeout_s)
            report.fail(reason, _redact(detail, api_key))
            log.debug("judge %s: %s (%s)", self.shown_url, reason, _redact(detail, api_key))
            return None

    async def _attempt(self, client: httpx.AsyncClient, body: dict, report: TransportReport) -> str:
        """One POST under the overall deadline; the reply's text."""
        try:
            response = await asyncio.wait_for(client.post(self.url, json=body), self.timeout_s)
        except asyncio.TimeoutError:
            report.abandoned += 1
            raise
        response.raise_for_status()
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise _Unreadable(f"not a chat completion ({len(response.content)} bytes)") from error
        if not isinstance(content, str):
            raise _Unreadable("the message content is not text")
        return content.strip()

    def _wait(self, state: RetryCallState) -> float:
        """Exponential back-off, or the server's Retry-After when it asks for longer; at most `max_wait_s`."""
        backoff = self.backoff_s * 2 ** (state.attempt_number - 1)
        error = state.outcome.exception() if state.outcome else None
        asked = _retry_after(error.response) if isinstance(error, httpx.HTTPStatusError) else None
        return min(max(backoff, asked or 0.0), self.max_wait_s)


def _retryable(error: BaseException) -> bool:
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code in _RETRY_STATUS or error.response.status_code >= 500
    return isinstance(error, httpx.TransportError | asyncio.TimeoutError)


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if email.utils.parsedate_tz(value) else None
        return max(when.timestamp() - time.time(), 0.0) if when else None


def _describe(error: BaseException, timeout_s: float) -> tuple[str, str]:
    """(short reason for counting, one-line detail) of a failed request."""
    if isinstance(error, asyncio.TimeoutError | httpx.TimeoutException):
        return "timeout", f"no complete reply within {timeout_s:g} s"
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        return f"HTTP {status}", error.response.text[:200].strip() or error.response.reason_phrase
    if isinstance(error, httpx.ConnectError):
        return "connection failed", str(error) or type(error).__name__
    if isinstance(error, _Unreadable):
        return "unreadable reply", str(error)
    return type(error).__name__, str(error)[:200]


def _unwrap(content: str) -> str:
    """The `reply` of a structured JSON answer; the text itself when it is not one (the regex parses it)."""
    try:
        reply = json.loads(content).get("reply")
    except (ValueError, AttributeError):
        return content
    return reply.strip() if isinstance(reply, str) else content


def _redact(text: str, secret: str | None) -> str:
    """`text` with the secret and any URL's credentials replaced, in case a server or httpx echoes the request."""
    return redact_urls(text.replace(secret, "***") if secret else text)


def _run(awaitable: Awaitable[T]) -> T:
    """Run a coroutine to the end from synchronous code; SIGTERM cancels it and raises `JudgeInterrupted`."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_cancel_on_sigterm(awaitable))
    with ThreadPoolExecutor(1) as pool:  # called from inside an event loop (a notebook): run beside it
        return pool.submit(asyncio.run, _cancel_on_sigterm(awaitable)).result()


async def _cancel_on_sigterm(awaitable: Awaitable[T]) -> T:
    """Await, cancelling on SIGTERM; then hand the signal to whoever handled it before (Lightning) and raise."""
    task = asyncio.ensure_future(awaitable)
    with _sigterm_cancels(task) as received:
        try:
            return await task
        except asyncio.CancelledError:
            if received:
                raise JudgeInterrupted("SIGTERM while waiting for the judge: its requests were cancelled") from None
            raise


@contextmanager
def _sigterm_cancels(task: asyncio.Future):
    """While inside, SIGTERM cancels `task`; on exit the previous handler is back and gets the signal too."""
    received: list[int] = []
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or previous in (signal.SIG_IGN, None):
        yield received
        return
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: (received.append(signal.SIGTERM), task.cancel()))
    try:
        yield received
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, previous)
        if received and callable(previous):
            previous(signal.SIGTERM, None)  # Lightning records it and stops the loop
        elif received:
            os.kill(os.getpid(), signal.SIGTERM)  # the default action: terminate, as without us
