"""Judge backends: something that answers a batch of chat conversations with one text reply each.

Two backends share one interface, chosen in config with `_target_`:
- `TransformersJudge`: a causal LM in this process (a local path or hub id; the embedded tiny model by default).
- `OpenAIChatJudge`: any OpenAI-compatible `/chat/completions` server (vLLM, TGI, llama.cpp, hosted APIs).
A reply is None when the judge could not answer (timeout, HTTP error, unreadable body); the terms then use their
fallback score and count a failure. Programming errors (a bad model path) raise instead.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable

import torch

log = logging.getLogger(__name__)

Messages = list[dict[str, Any]]  # one chat conversation: [{"role": "system"|"user"|..., "content": str}, ...]


@runtime_checkable
class JudgeBackend(Protocol):
    """Answers each chat conversation with a reply string, or None when it could not."""

    def complete(self, prompts: list[Messages]) -> list[str | None]:
        """One reply per conversation, in order."""
        ...


# Loaded (model, tokenizer) pairs shared by every TransformersJudge with the same settings, so the two judge terms
# of a suite hold one copy of an 8B judge, not two.
_LOADED: dict[tuple[str, str | None, str, str], tuple[Any, Any]] = {}
_LOAD_LOCK = threading.Lock()


class TransformersJudge:
    """A judge run in-process with transformers: batched greedy generation through the tokenizer's chat template.

    Args:
        model_path: local directory or hub id; None builds and uses the embedded tiny Qwen2 (offline; it is no
            grader, its replies carry no score, so every score falls back: it exercises the pipeline only).
        max_new_tokens: reply budget; "Score: 0.7" or "yes" needs a handful.
        device: "auto" (the current CUDA device if any, else CPU), or a torch device string.
        dtype: "auto" (bfloat16 on CUDA, float32 on CPU) or a torch dtype name.
        gguf_file: file name inside `model_path` for GGUF checkpoints (needs the `gguf` package).
        batch_size: conversations per `generate` call.
        chat_template_kwargs: extra template variables, e.g. {"enable_thinking": false} for Qwen3.
    """

    def __init__(
        self,
        model_path: str | None = None,
        max_new_tokens: int = 32,
        device: str = "auto",
        dtype: str = "auto",
        gguf_file: str | None = None,
        batch_size: int = 8,
        chat_template_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if max_new_tokens < 1 or batch_size < 1:
            raise ValueError(
                f"TransformersJudge needs max_new_tokens >= 1 and batch_size >= 1, got {max_new_tokens}, {batch_size}"
            )
        self.model_path = model_path
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.dtype = dtype
        self.gguf_file = gguf_file
        self.batch_size = batch_size
        self.chat_template_kwargs = _plain(chat_template_kwargs or {})

    def _resolve(self) -> tuple[str, torch.device, torch.dtype]:
        """Path, device and dtype with "auto"/None filled in."""
        if self.model_path is None:
            from audio_thinker.models.tiny import ensure_tiny_qwen2  # builds once; imported late to keep import light

            path = str(ensure_tiny_qwen2())
        else:
            path = str(self.model_path)
        if self.device == "auto":
            device = (
                torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
            )
        else:
            device = torch.device(self.device)
        if self.dtype == "auto":
            dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        else:
            dtype = getattr(torch, self.dtype)
        return path, device, dtype

    def load(self) -> tuple[Any, Any]:
        """The (model, tokenizer) pair, loaded on first use and shared between identical judges."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path, device, dtype = self._resolve()
        key = (path, self.gguf_file, str(device), str(dtype))
        with _LOAD_LOCK:
            if key not in _LOADED:
                extra = {"gguf_file": self.gguf_file} if self.gguf_file else {}
                tokenizer = AutoTokenizer.from_pretrained(path, **extra)
                tokenizer.padding_side = "left"  # decoder-only batched generation continues from the right edge
                if tokenizer.pad_token is None:
                    tokenizer.pad_token = tokenizer.eos_token
                model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **extra).to(device).eval()
                _LOADED[key] = (model, tokenizer)
        return _LOADED[key]

    def _render(self, tokenizer: Any, messages: Messages) -> str:
        """The conversation as model text, ending where the assistant's reply starts."""
        if tokenizer.chat_template:
            return tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True, **self.chat_template_kwargs
            )
        # Base models without a template: a plain transcript the model can continue.
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join([*lines, "Assistant:"])

    def complete(self, prompts: list[Messages]) -> list[str | None]:
        """Greedy replies, `batch_size` conversations per generate call."""
        from transformers import GenerationConfig

        if not prompts:
            return []
        model, tokenizer = self.load()
        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            eos_token_id=model.generation_config.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        replies: list[str | None] = []
        for start in range(0, len(prompts), self.batch_size):
            texts = [self._render(tokenizer, m) for m in prompts[start : start + self.batch_size]]
            batch = tokenizer(
                texts, return_tensors="pt", padding=True, add_special_tokens=not tokenizer.chat_template
            ).to(model.device)
            with torch.inference_mode():
                output = model.generate(**batch, generation_config=config)  # [B, P + new]
            new_tokens = output[:, batch["input_ids"].shape[1] :]  # [B, new]
            replies.extend(text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
        return replies


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would forward the Authorization header to whatever host a redirect names."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class OpenAIChatJudge:
    """A judge behind an OpenAI-compatible `POST {base_url}/chat/completions` (stdlib HTTP, a thread pool).

    Each conversation is one request. Timeouts, connection errors, HTTP 429 and 5xx are retried up to `max_retries`
    times with exponential back-off (`backoff_s`, 2·backoff_s, ...); other HTTP errors and unreadable bodies are
    not retried. A request that never succeeds gives None. The API key is read from the environment variable
    `api_key_env` at each call, sent only as `Authorization: Bearer …`, and never stored, logged or put in a
    message; an unset variable sends no header (local vLLM needs none).

    Args:
        base_url: server root including the version, e.g. "http://localhost:8000/v1".
        model: the model name the server expects.
        api_key_env: environment variable holding the key (None: never send one).
        timeout_s: socket timeout per attempt.
        max_retries: extra attempts after the first.
        backoff_s: sleep before the first retry; doubles each retry.
        batch_size: conversations handed to the pool at a time (bounds queued work on huge batches).
        max_workers: concurrent requests.
        max_new_tokens: sent as `max_tokens`.
        temperature: sampling temperature (0: greedy, so replies are cacheable).
        extra_body: extra JSON fields, e.g. {"chat_template_kwargs": {"enable_thinking": false}} for vLLM.
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
    ) -> None:
        if timeout_s <= 0 or max_retries < 0 or backoff_s < 0 or batch_size < 1 or max_workers < 1:
            raise ValueError(
                "OpenAIChatJudge needs timeout_s > 0, max_retries >= 0, backoff_s >= 0, batch_size >= 1 and "
                f"max_workers >= 1; got {timeout_s}, {max_retries}, {backoff_s}, {batch_size}, {max_workers}"
            )
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.batch_size = batch_size
        self.max_workers = max_workers
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.extra_body = _plain(extra_body or {})

    def complete(self, prompts: list[Messages]) -> list[str | None]:
        """One reply (or None) per conversation, requested concurrently."""
        if not prompts:
            return []
        api_key = os.environ.get(self.api_key_env) if self.api_key_env else None
        opener = urllib.request.build_opener(_NoRedirect)
        replies: list[str | None] = []
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(prompts))) as pool:
            for start in range(0, len(prompts), self.batch_size):
                chunk = prompts[start : start + self.batch_size]
                replies.extend(pool.map(lambda messages: self._request(opener, messages, api_key), chunk))
        return replies

    def _request(self, opener: urllib.request.OpenerDirector, messages: Messages, api_key: str | None) -> str | None:
        """One conversation with retries; None when every attempt failed."""
        body = {"model": self.model, "messages": messages, "max_tokens": self.max_new_tokens}
        body.update({"temperature": self.temperature, **self.extra_body})
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        data = json.dumps(body).encode()
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with opener.open(request, timeout=self.timeout_s) as response:
                    payload = response.read()
            except urllib.error.HTTPError as error:
                with error:
                    detail = _redact(error.read(300).decode("utf-8", "replace"), api_key)
                retry = error.code == 429 or error.code >= 500
                log.warning(
                    "judge %s: HTTP %s (attempt %d/%d): %s", self.url, error.code, attempt + 1, attempts, detail
                )
                if not retry:
                    return None
                continue
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                reason = _redact(str(getattr(error, "reason", error)), api_key)
                log.warning(
                    "judge %s: %s (attempt %d/%d)", self.url, reason or type(error).__name__, attempt + 1, attempts
                )
                continue
            return self._content(payload)
        return None

    def _content(self, payload: bytes) -> str | None:
        """The first choice's message text, or None if the body is not a chat completion."""
        try:
            content = json.loads(payload)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            log.warning("judge %s: reply is not a chat completion (%d bytes)", self.url, len(payload))
            return None
        return content.strip() if isinstance(content, str) else None


def _plain(value: Any) -> Any:
    """Nested mappings and sequences as dicts and lists (Hydra hands over DictConfig, which JSON cannot encode)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value


def _redact(text: str, secret: str | None) -> str:
    """`text` with the secret replaced, in case a server echoes the request back."""
    return text.replace(secret, "***") if secret else text
