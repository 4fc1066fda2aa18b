"""CESAR's lexical consistency reward: does the reasoning talk about the answer and the question?"""

from __future__ import annotations

from audio_thinker.example import AudioQAExample
from audio_thinker.format.matching import match_option
from audio_thinker.format.parsing import ParsedCompletion
from audio_thinker.rewards.base import RewardInputs, RewardTerm
from audio_thinker.rewards.concepts import (
    concepts,
    content_tokens,
    load_stopwords,
    order_agrees,
    overlap,
    sequence_parts,
)


def answer_text(answer: str | None, example: AudioQAExample) -> str:
    """ŷ: the answer as words; an option letter ("B", "(b)", "Option B") becomes that option's text."""
    if not answer:
        return ""
    if example.choices and (option := match_option(answer, example.choices)) is not None:
        return option
    return answer  # open question, or an answer that names no option: its own words


def question_text(example: AudioQAExample) -> str:
    """Q: the question followed by the text of its options."""
    return " ".join([example.question, *(example.choices or [])])


class ConsistencyReward(RewardTerm):
    """R_consistency = Sim(t, ŷ) + Sim(t, Q), in [0, 2]; Sim is the concept overlap of `rewards.concepts`.

    Sim(x, y) = |C(x) ∩ C(y)| / max(|C(x)|, |C(y)|), t = the think text, ŷ = the answer text (an option letter is
    expanded to the option's text), Q = question + options. Correctness is not looked at.

    Order rule: when ŷ is a sequence ("up then down", "a beep followed by a click") and t names its parts only in
    another order ("goes down then up"), t contradicts ŷ and Sim(t, ŷ) = 0 (`concepts.order_agrees`); sets alone
    cannot tell agreement from contradiction there.

    Only completions in mode "think" are scored; no think block, a blank one, or a malformed completion gets 0:
    CESAR requires `<think>…</think><answer>…</answer>`, and paying a process reward for output without that
    shape would blur the format signal. An empty answer contributes Sim(t, ŷ) = 0.

    >>> from audio_thinker.format.parsing import parse_completion
    >>> ex = AudioQAExample(id="1", question="Which tone is higher?", answer="second", choices=["first", "second"])
    >>> done = parse_completion("<think>The second tone is higher.</think><answer>B</answer>")
    >>> # C(t) = {second, ton, high}, C(ŷ) = {second}, C(Q) = {ton, high, first, second}: 1/3 + 3/4
    >>> ConsistencyReward().score(RewardInputs([done], [ex], [6], [1]))
    [1.0833333333333333]
    """

    def __init__(self, weight: float = 1.0, stopwords_path: str | None = None) -> None:
        super().__init__(weight)
        self.stopwords = load_stopwords(stopwords_path)

    def score(self, inputs: RewardInputs) -> list[float]:
        return [self.score_one(c, e) for c, e in zip(inputs.completions, inputs.examples, strict=True)]

    def score_one(self, completion: ParsedCompletion, example: AudioQAExample) -> float:
        """Sim(t, ŷ) + Sim(t, Q) for one completion (0 unless its mode is "think")."""
        if completion.mode != "think":
            return 0.0
        think_tokens = content_tokens(completion.think, self.stopwords)
        think = set(think_tokens)
        answer_words = answer_text(completion.answer, example)
        answer = concepts(answer_words, self.stopwords)
        in_order = order_agrees(think_tokens, sequence_parts(answer_words, self.stopwords))
        question = concepts(question_text(example), self.stopwords)
        return (overlap(think, answer) if in_order else 0.0) + overlap(think, question)
