"""Audio-Thinker's judge rewards: reasoning–answer consistency (R_c) and reasoning quality (R_t).

Both terms show a text-only judge the question, its options, the reasoning and the answer (the judge never hears
the audio), ask for a reply from a small grammar (Yes/No; an integer 0..scale), read it with `judge.scores`, and
cache replies by (question, completion, judge, rubric). Identical prompts of one batch are sent once.

A judgment fails when the judge gives no reply (a transport failure: timeout, HTTP error, unreadable body) or a
reply off the grammar (a parse failure). A failure must never pay more than a real judgment would on average, so
`on_failure` is one of:
- "batch_mean" (default): the mean of this call's successful judgments of the term (NaN if none succeeded), so a
  failed sample earns what a judged one earns on average, and a judge that is down pays nothing;
- "skip": NaN, the term is left out for that sample (R_c: no consistency bonus, R = R_a + 0.5 R_f + R_t; R_t: 0).
Each call with failures logs one summary line; when more than `max_failure_rate` of the last `failure_window`
judgments failed, the term raises `JudgeUnavailable` and the run stops. `metrics()` reports `judge/calls`,
`judge/requests`, `judge/cache_hits`, `judge/failures` (= `judge/transport_failures` + `judge/parse_failures`),
`judge/seconds` (wall time in the judge) and, when something was judged, `judge/<term>/failure_rate`.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Sequence

from audio_thinker.example import AudioQAExample
from audio_thinker.format.options import options_block
from audio_thinker.format.parsing import ParsedCompletion
from audio_thinker.redaction import redact_urls
from audio_thinker.rewards.base import RewardInputs, RewardTerm
from audio_thinker.rewards.judge.cache import JudgeCache
from audio_thinker.rewards.judge.protocol import JudgeBackend, JudgeUnavailable, Messages, TransportReport
from audio_thinker.rewards.judge.scores import VERDICT_GRAMMAR, ReplyGrammar, parse_score, parse_verdict, score_grammar
from audio_thinker.rewards.outcome import is_correct

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You grade the written reasoning of an assistant that answered a question about an audio clip. "
    "You cannot hear the clip: judge the text only. Follow the reply format exactly."
)
_CONTEXT = "Question: {question}\nOptions:\n{options}\n\nReasoning:\n{reasoning}\n\nFinal answer: {answer}\n\n"
CONSISTENCY_RUBRIC = _CONTEXT + (
    "Does the reasoning lead to and agree with the final answer, rather than pointing to another answer or "
    "contradicting it? Do not judge whether the answer is actually right.\nReply with one word: Yes or No."
)
THINK_RUBRIC = _CONTEXT + (
    "Rate the quality of the reasoning: relevant to the question, grounded in the sounds it describes, logically "
    "sound step by step, free of padding and repetition. Ignore whether the final answer is correct.\n"
    "Reply with one integer from 0 (worthless) to {scale} (excellent), and nothing else."
)
FAILURE_POLICIES = ("batch_mean", "skip")
SAMPLES_KEPT = 3  # judge exchanges kept from each call for the logged samples


def options_text(example: AudioQAExample) -> str:
    """Options as "A. text" lines, or a note for open questions."""
    if not example.choices:
        return "(open question, no options)"
    return options_block(example.choices)


def fill(template: str, fields: dict[str, str]) -> str:
    """Replace each `{name}` in `template`; plain replacement, so other braces in a rubric are left alone."""
    for name, value in fields.items():
        template = template.replace("{" + name + "}", value)
    return template


class JudgeTerm(RewardTerm):
    """Shared machinery of the judge terms: prompt, cache, batched judge call, parsing, failure policy and counts.

    Args:
        judge: a `JudgeBackend` (Hydra builds it from its `_target_`).
        weight: the term's weight in the suite.
        rubric: user-message template with {question}, {options}, {reasoning}, {answer}; the term's default if None.
        system_prompt: the system message; `SYSTEM_PROMPT` if None.
        on_failure: "batch_mean" or "skip" (module docstring).
        cache: a `JudgeCache` (in memory if None); pass one with a `path` to reuse replies across runs.
        constrain: hand the backend the reply grammar (constrained decoding, structured output).
        max_failure_rate: stop the run when more than this share of the last `failure_window` judgments failed.
        failure_window: judgments (completions sent to the judge or found in the cache) the rate is taken over.
    """

    default_rubric: str = ""

    def __init__(
        self,
        judge: JudgeBackend,
        weight: float = 1.0,
        rubric: str | None = None,
        system_prompt: str | None = None,
        on_failure: str = "batch_mean",
        cache: JudgeCache | None = None,
        constrain: bool = True,
        max_failure_rate: float = 0.5,
        failure_window: int = 64,
    ) -> None:
        super().__init__(weight)
        if on_failure not in FAILURE_POLICIES:
            raise ValueError(f"{type(self).__name__}.on_failure must be one of {FAILURE_POLICIES}, got {on_failure!r}")
        if not 0.0 <= max_failure_rate <= 1.0 or failure_window < 1:
            raise ValueError(
                f"{type(self).__name__} needs 0 <= max_failure_rate <= 1 and failure_window >= 1, "
                f"got {max_failure_rate}, {failure_window}"
            )
        if not callable(getattr(judge, "complete", None)):
            raise TypeError(f"{type(self).__name__}.judge must have complete(prompts), got {type(judge).__name__}")
        self.judge = judge
        self.rubric = rubric or self.default_rubric
        self.system_prompt = SYSTEM_PROMPT if system_prompt is None else system_prompt
        self.on_failure = on_failure
        self.cache = cache if cache is not None else JudgeCache()
        self.constrain = constrain
        self.max_failure_rate = max_failure_rate
        self._recent: deque[bool] = deque(maxlen=failure_window)  # True = failed
        self._stop: str | None = None  # why the run must stop (decided with every rank in `step_mean`)
        self._ready = False
        self._counts: dict[str, float] = {}
        self.exchanges: list[dict[str, object]] = []  # a few (prompt, reply, value) of the last call

    # --- what a subclass defines -------------------------------------------------------------------------------
    @abstractmethod
    def grammar(self) -> ReplyGrammar:
        """The replies the rubric asks for."""

    @abstractmethod
    def parse(self, reply: str | None) -> float | None:
        """The value of a reply, or None when it does not parse."""

    def prompt_fields(self) -> dict[str, str]:
        """Extra rubric placeholders besides question, options, reasoning and answer."""
        return {}

    @abstractmethod
    def score_batch(self, inputs: RewardInputs) -> list[float | None]:
        """The term's values; subclasses implement it with `ask` and `settle`."""

    # --- shared machinery --------------------------------------------------------------------------------------
    def setup(self) -> None:
        """The backend's start-up check (endpoint answers, model loads), once."""
        if not self._ready:
            if callable(check := getattr(self.judge, "check", None)):
                check()
            self._ready = True

    def messages(self, completion: ParsedCompletion, example: AudioQAExample) -> Messages:
        """The chat conversation that asks the judge about one completion."""
        fields = {
            "question": example.question,
            "options": options_text(example),
            "reasoning": completion.think or "",
            "answer": completion.answer or "",
            **self.prompt_fields(),
        }
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": fill(self.rubric, fields)},
        ]

    def _key(self, completion: ParsedCompletion, example: AudioQAExample) -> str:
        grammar = "|".join(self.grammar().choices) if self.constrain else "free"
        judge = getattr(self.judge, "identity", type(self.judge).__name__)
        rubric = "\n".join([judge, grammar, self.system_prompt, fill(self.rubric, self.prompt_fields())])
        return JudgeCache.key(example.question + "\n" + options_text(example), completion.text, rubric)

    def ask(self, inputs: RewardInputs, indices: Sequence[int]) -> dict[int, float | None]:
        """Parsed judge values for the completions at `indices` (None = failed); updates counts and samples."""
        self.setup()
        keys = {i: self._key(inputs.completions[i], inputs.examples[i]) for i in indices}
        cached = self.cache.get_many(keys.values())
        pending: dict[str, Messages] = {}  # one prompt per distinct key: duplicates in a batch are sent once
        for index, key in keys.items():
            if key not in cached and key not in pending:
                pending[key] = self.messages(inputs.completions[index], inputs.examples[index])
        fresh, seconds, report = self._send(pending)
        replies = {index: cached.get(key, fresh.get(key)) for index, key in keys.items()}
        values = {index: self.parse(reply) for index, reply in replies.items()}
        transport = sum(reply is None for reply in replies.values())
        unparsed = sum(values[i] is None for i in indices) - transport
        self._count(len(indices), len(pending), sum(k in cached for k in keys.values()), transport, unparsed, seconds)
        self.exchanges = [
            {
                "prompt": self.messages(inputs.completions[i], inputs.examples[i])[-1]["content"],
                "reply": replies[i],
                "value": values[i],
            }
            for i in list(indices)[:SAMPLES_KEPT]
        ]
        self._watch([values[i] is None for i in indices], report, transport, unparsed)
        return values

    def _send(self, pending: dict[str, Messages]) -> tuple[dict[str, str | None], float, TransportReport | None]:
        """Fresh replies by key, seconds spent, and the backend's report on failures."""
        if not pending:
            return {}, 0.0, None
        start = time.perf_counter()
        prompts = list(pending.values())
        replies = self.judge.complete(prompts, grammar=self.grammar() if self.constrain else None)
        seconds = time.perf_counter() - start
        if len(replies) != len(pending):
            raise ValueError(f"judge {type(self.judge).__name__} answered {len(replies)} of {len(pending)} prompts")
        fresh = dict(zip(pending, replies, strict=True))
        self.cache.put_many({key: reply for key, reply in fresh.items() if reply is not None})
        return fresh, seconds, getattr(self.judge, "last_report", None)

    def _count(self, calls: int, requests: int, hits: int, transport: int, unparsed: int, seconds: float) -> None:
        add = {
            "judge/calls": calls,
            "judge/requests": requests,
            "judge/cache_hits": hits,
            "judge/seconds": seconds,
            "judge/transport_failures": transport,
            "judge/parse_failures": unparsed,
        }
        for key, value in add.items():
            self._counts[key] = self._counts.get(key, 0.0) + value

    def _watch(self, failed: list[bool], report: TransportReport | None, transport: int, unparsed: int) -> None:
        """One summary line for a call with failures; stop when the recent failure rate passes the limit."""
        if not any(failed):
            self._recent.extend(failed)
            return
        why = f"{transport} without a reply" + (f" ({report.describe()})" if report and report.failures else "")
        note = ""
        if report and report.abandoned:
            note = (
                f"; {report.abandoned} attempts hit their deadline and may still be running on the server: set "
                "the judge's max_workers to the server's parallel slots, or raise timeout_s"
            )
        summary = f"{sum(failed)} of {len(failed)} judgments failed: {why}, {unparsed} unparsable{note}"
        judge = self.judge_description()
        log.warning("%s (%s): %s; %s", self.name, judge, summary, f"on_failure={self.on_failure}")
        self._recent.extend(failed)
        window = self._recent.maxlen or 1
        if len(self._recent) == window and sum(self._recent) / window > self.max_failure_rate:
            self._stop = (
                f"reward term '{self.name}' ({judge}): {sum(self._recent)} of the last {window} judgments failed, "
                "more than "
                f"max_failure_rate={self.max_failure_rate} (last step: {summary}). Fix the judge, or change "
                f"reward.terms.{self.name}.max_failure_rate / failure_window"
            )

    def judge_description(self) -> str:
        """The judge as messages name it: an endpoint's URL (credentials redacted) and model, else its identity."""
        described = getattr(self.judge, "description", None) or getattr(self.judge, "identity", None)
        return redact_urls(str(described or type(self.judge).__name__))

    def step_mean(self, inputs: RewardInputs, values: dict[int, float | None]) -> float | None:
        """The mean of the step's successful judgments over every micro-batch and rank (None if there are none).

        A collective under DDP (`inputs.sum_over_step`), so it also carries the stop decision: when the judge has
        failed too often on any rank, every rank raises `JudgeUnavailable` together instead of one rank hanging.
        """
        judged = [v for v in values.values() if v is not None]
        total, count, stopping = inputs.sum_over_step([sum(judged), len(judged), float(self._stop is not None)])
        if stopping:
            raise JudgeUnavailable(
                self._stop or f"reward term '{self.name}': the judge failed too often on another rank"
            )
        return total / count if count else None

    def settle(self, values: dict[int, float | None], mean: float | None) -> dict[int, float | None]:
        """Judged values with failures replaced by the `on_failure` policy: `mean` (the step's mean of successful
        judgments) for `batch_mean`, None ("not applicable") for `skip` or when there is no mean."""
        fill = mean if self.on_failure == "batch_mean" else None
        return {index: fill if value is None else value for index, value in values.items()}

    def score(self, inputs: RewardInputs) -> list[float | None]:
        self._counts = {}
        self.exchanges = []
        return self.score_batch(inputs)

    def metrics(self) -> dict[str, float]:
        keys = (
            "judge/calls",
            "judge/requests",
            "judge/cache_hits",
            "judge/transport_failures",
            "judge/parse_failures",
            "judge/seconds",
        )
        out = {key: float(self._counts.get(key, 0.0)) for key in keys}
        out["judge/failures"] = out["judge/transport_failures"] + out["judge/parse_failures"]
        if out["judge/calls"]:  # a rate only when something was judged: no value that looks like judging
            out[f"judge/{self.name}/failure_rate"] = out["judge/failures"] / out["judge/calls"]
        return out


class JudgeConsistencyReward(JudgeTerm):
    """R_c ∈ {0, 1}: the judge says whether the reasoning agrees with the answer (Audio-Thinker).

    - correct answer, think mode: 1 if the judge says Yes, 0 if No;
    - correct answer, no-think mode: 1 (the paper's value: nothing to contradict the answer; not a judgment);
    - wrong answer, or a malformed completion: NaN, "not applicable": the paper applies R_c to correct answers
      only, and under `AudioThinkerCombiner` NaN means no consistency bonus;
    - judge failure: the `on_failure` policy (default: the mean of the step's successful verdicts).
    """

    default_rubric = CONSISTENCY_RUBRIC

    def grammar(self) -> ReplyGrammar:
        return VERDICT_GRAMMAR

    def parse(self, reply: str | None) -> float | None:
        return parse_verdict(reply)

    def score_batch(self, inputs: RewardInputs) -> list[float | None]:
        values: list[float | None] = [None] * len(inputs)
        to_judge = []
        for index, (completion, example) in enumerate(zip(inputs.completions, inputs.examples, strict=True)):
            if completion.mode == "malformed" or not is_correct(completion.answer, example):
                continue
            if completion.mode == "no_think":
                values[index] = 1.0
            else:
                to_judge.append(index)
        verdicts = self.ask(inputs, to_judge)
        for index, value in self.settle(verdicts, self.step_mean(inputs, verdicts)).items():
            values[index] = value
        return values


class JudgeThinkReward(JudgeTerm):
    """R_t ∈ [0, 1]: the judge's integer score n of the reasoning's quality on 0..`scale`, as n / scale.

    - think mode: n / scale, regardless of correctness (0.1 steps at the default scale 10, as in the paper);
    - no-think mode: the mean R_t of the step's successfully judged think-mode completions (every
      micro-batch and rank, the set the adaptive reward's λ is taken over), so thinking and not
      thinking are worth the same in expectation; NaN when nothing was judged (nobody reasoned, or every
      judgment failed): no value that looks like a judgment when there was none;
    - malformed: NaN (no reasoning to judge; under the combiners it adds nothing, as a 0 would);
    - judge failure: the `on_failure` policy (default: that same batch mean).

    Args (besides `JudgeTerm`'s):
        scale: the top of the integer scale the rubric states (its {scale} placeholder).
    """

    default_rubric = THINK_RUBRIC

    def __init__(self, judge: JudgeBackend, *args, scale: int = 10, **kwargs) -> None:
        if scale < 1:
            raise ValueError(f"JudgeThinkReward.scale must be >= 1, got {scale}")
        self.scale = scale
        super().__init__(judge, *args, **kwargs)

    def grammar(self) -> ReplyGrammar:
        return score_grammar(self.scale)

    def parse(self, reply: str | None) -> float | None:
        return parse_score(reply, self.scale)

    def prompt_fields(self) -> dict[str, str]:
        return {"scale": str(self.scale)}

    def score_batch(self, inputs: RewardInputs) -> list[float | None]:
        values: list[float | None] = [None] * len(inputs)
        thinking = [i for i, c in enumerate(inputs.completions) if c.mode == "think"]
        scores = self.ask(inputs, thinking)
        batch_mean = self.step_mean(inputs, scores)
        for index, value in self.settle(scores, batch_mean).items():
            values[index] = value
        for index, completion in enumerate(inputs.completions):
            if completion.mode == "no_think":
                values[index] = batch_mean
        return values
