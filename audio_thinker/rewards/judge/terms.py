"""Audio-Thinker's judge rewards: reasoning–answer consistency (R_c) and reasoning quality (R_t).

Both terms show a text-only judge the question, its options, the reasoning and the answer (the judge never hears
the audio), read a score from its reply with `judge.scores`, and cache replies by (question, completion, rubric).
When the judge fails (no reply, or a reply with no readable score) the term uses `fallback_score` and counts a
failure; `metrics()` reports `judge/failures` and `judge/cache_hits` for the last call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from audio_thinker.data.example import AudioQAExample
from audio_thinker.format.parsing import ParsedCompletion
from audio_thinker.rewards.base import RewardInputs, RewardTerm
from audio_thinker.rewards.judge.backends import JudgeBackend, Messages
from audio_thinker.rewards.judge.cache import JudgeCache
from audio_thinker.rewards.judge.scores import parse_score, parse_verdict
from audio_thinker.rewards.outcome import is_correct

SYSTEM_PROMPT = (
    "You grade the written reasoning of an assistant that answered a question about an audio clip. "
    "You cannot hear the clip: judge the text only. Follow the reply format exactly."
)
_CONTEXT = "Question: {question}\nOptions:\n{options}\n\nReasoning:\n{reasoning}\n\nFinal answer: {answer}\n\n"
CONSISTENCY_RUBRIC = _CONTEXT + (
    "Does the reasoning lead to and agree with the final answer, rather than pointing to another answer or "
    "contradicting it? Do not judge whether the answer is actually right.\nReply with one word: yes or no."
)
THINK_RUBRIC = _CONTEXT + (
    "Rate the quality of the reasoning: relevant to the question, grounded in the sounds it describes, logically "
    "sound step by step, free of padding and repetition. Ignore whether the final answer is correct.\n"
    'Reply in the form "Score: X" with X from 0.0 to 1.0 in steps of 0.1.'
)


def options_text(example: AudioQAExample) -> str:
    """Options as "A. text" lines, or a note for open questions."""
    if not example.choices:
        return "(open question, no options)"
    return "\n".join(f"{chr(ord('A') + i)}. {choice}" for i, choice in enumerate(example.choices))


def fill(template: str, fields: dict[str, str]) -> str:
    """Replace each `{name}` in `template`; plain replacement, so other braces in a rubric are left alone."""
    for name, value in fields.items():
        template = template.replace("{" + name + "}", value)
    return template


class JudgeTerm(RewardTerm):
    """Shared machinery of the judge terms: prompt, cache, batched judge call, score parsing, failure counts.

    Args:
        judge: a `JudgeBackend` (Hydra builds it from its `_target_`).
        weight: the term's weight in the suite.
        rubric: user-message template with {question}, {options}, {reasoning}, {answer}; the term's default if None.
        system_prompt: the system message; `SYSTEM_PROMPT` if None.
        fallback_score: the value given when the judge fails; None: the term's default; NaN (YAML `.nan`): mark
            failures "not applicable".
        cache: a `JudgeCache` (in memory if None); pass one with a `path` to reuse replies across runs.
    """

    default_rubric: str = ""
    default_fallback: float | None = None
    parse: Callable[[str | None], float | None] = staticmethod(parse_score)

    def __init__(
        self,
        judge: JudgeBackend,
        weight: float = 1.0,
        rubric: str | None = None,
        system_prompt: str | None = None,
        fallback_score: float | None = None,
        cache: JudgeCache | None = None,
    ) -> None:
        super().__init__(weight)
        if not callable(getattr(judge, "complete", None)):
            raise TypeError(f"{type(self).__name__}.judge must have complete(prompts), got {type(judge).__name__}")
        self.judge = judge
        self.rubric = rubric or self.default_rubric
        self.system_prompt = SYSTEM_PROMPT if system_prompt is None else system_prompt
        self.fallback_score = self.default_fallback if fallback_score is None else fallback_score
        self.cache = cache if cache is not None else JudgeCache()
        self._failures = 0
        self._cache_hits = 0

    def messages(self, completion: ParsedCompletion, example: AudioQAExample) -> Messages:
        """The chat conversation that asks the judge about one completion."""
        fields = {
            "question": example.question,
            "options": options_text(example),
            "reasoning": completion.think or "",
            "answer": completion.answer or "",
        }
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": fill(self.rubric, fields)},
        ]

    def ask(self, inputs: RewardInputs, indices: Sequence[int]) -> dict[int, float | None]:
        """Parsed judge scores for the completions at `indices` (None = failed); updates the metrics."""
        replies: dict[int, str | None] = {}
        pending: list[tuple[int, str, Messages]] = []
        rubric = self.system_prompt + "\n" + self.rubric
        for index in indices:
            completion, example = inputs.completions[index], inputs.examples[index]
            key = JudgeCache.key(example.question + "\n" + options_text(example), completion.text, rubric)
            if (cached := self.cache.get(key)) is not None:
                self._cache_hits += 1
                replies[index] = cached
            else:
                pending.append((index, key, self.messages(completion, example)))
        if pending:
            fresh = self.judge.complete([messages for _, _, messages in pending])
            if len(fresh) != len(pending):
                raise ValueError(f"judge {type(self.judge).__name__} answered {len(fresh)} of {len(pending)} prompts")
            for (index, key, _), reply in zip(pending, fresh, strict=True):
                replies[index] = reply
                if reply is not None:
                    self.cache.put(key, reply)
            self.cache.save()
        scores = {index: self.parse(replies[index]) for index in indices}
        self._failures += sum(score is None for score in scores.values())
        return scores

    def score(self, inputs: RewardInputs) -> list[float | None]:
        self._failures = self._cache_hits = 0
        return self.score_batch(inputs)

    def score_batch(self, inputs: RewardInputs) -> list[float | None]:
        """The term's values; subclasses implement it with `ask`."""
        raise NotImplementedError

    def metrics(self) -> dict[str, float]:
        return {"judge/failures": float(self._failures), "judge/cache_hits": float(self._cache_hits)}


class JudgeConsistencyReward(JudgeTerm):
    """R_c ∈ {0, 1}: the judge says whether the reasoning agrees with the answer (Audio-Thinker).

    - correct answer, think mode: 1 if the judge says yes, 0 if no (`parse_verdict`);
    - correct answer, no-think mode: 1 (nothing to contradict the answer);
    - wrong answer, or a malformed completion: NaN, "not applicable": the paper applies R_c to correct answers
      only, and under `AudioThinkerCombiner` NaN means no consistency bonus.
    - judge failure: `fallback_score`, default 1.0, the no-think value: a judge that cannot answer gives no
      evidence of a contradiction, and any lower default would push the policy away from thinking whenever the
      judge is down (with the embedded tiny judge, which always fails, R_c is then 1 for every correct answer).
    """

    default_rubric = CONSISTENCY_RUBRIC
    default_fallback = 1.0
    parse = staticmethod(parse_verdict)

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
        for index, verdict in self.ask(inputs, to_judge).items():
            values[index] = self.fallback_score if verdict is None else verdict
        return values


class JudgeThinkReward(JudgeTerm):
    """R_t ∈ [0, 1]: the judge's score of the reasoning's quality, rounded to 0.1, regardless of correctness.

    - think mode: the judge's score (`parse_score`), rounded to the nearest 0.1;
    - no-think mode: the mean R_t of the step's think-mode completions, over all micro-batches and ranks
      (fallbacks included, so thinking and not thinking are worth the same in expectation), or `fallback_score`
      if the step has none;
    - malformed: 0 (no valid reasoning to credit);
    - judge failure: `fallback_score`, default 0.5, the middle of the scale: an unreadable reply is "no
      information", neither good nor bad reasoning.
    """

    default_rubric = THINK_RUBRIC
    default_fallback = 0.5

    def score_batch(self, inputs: RewardInputs) -> list[float | None]:
        values: list[float | None] = [0.0] * len(inputs)
        thinking = [i for i, c in enumerate(inputs.completions) if c.mode == "think"]
        for index, score in self.ask(inputs, thinking).items():
            values[index] = self.fallback_score if score is None else round(score * 10) / 10
        judged = [v for i in thinking if (v := values[i]) is not None and not math.isnan(v)]
        # Over the whole step on every rank, the same set as the adaptive reward's λ.
        total, count = inputs.sum_over_step([sum(judged), len(judged)])
        batch_mean = total / count if count else self.fallback_score
        for index, completion in enumerate(inputs.completions):
            if completion.mode == "no_think":
                values[index] = batch_mean
        return values
