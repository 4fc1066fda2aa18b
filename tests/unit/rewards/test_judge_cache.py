"""The judge reply cache: keys, memory, the JSON file, and what is never cached."""

from __future__ import annotations

import json

import pytest

from audio_thinker.rewards.judge.cache import JudgeCache
from audio_thinker.rewards.judge.terms import JudgeThinkReward


def test_key_separates_fields():
    assert JudgeCache.key("ab", "c", "r") != JudgeCache.key("a", "bc", "r")  # no ambiguity from concatenation
    assert JudgeCache.key("q", "c", "r") == JudgeCache.key("q", "c", "r")
    assert JudgeCache.key("q", "c", "r1") != JudgeCache.key("q", "c", "r2")  # another rubric, another entry


def test_memory_only_cache_writes_nothing(tmp_path):
    cache = JudgeCache()
    cache.put("k", "Score: 0.5")
    cache.save()
    assert cache.get("k") == "Score: 0.5" and cache.get("other") is None and len(cache) == 1
    assert list(tmp_path.iterdir()) == []


def test_file_round_trip(tmp_path):
    path = tmp_path / "sub" / "judge.json"
    first = JudgeCache(str(path))
    first.put("k", "yes")
    first.save()
    assert json.loads(path.read_text()) == {"k": "yes"}
    assert JudgeCache(str(path)).get("k") == "yes"
    assert [p.name for p in path.parent.iterdir()] == ["judge.json"]  # no staging file left behind


def test_corrupt_file_says_what_to_do(tmp_path):
    path = tmp_path / "judge.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="delete it"):
        JudgeCache(str(path))


class Flaky:
    """Fails (None) on the first call, answers afterwards; counts prompts."""

    def __init__(self) -> None:
        self.prompts = 0
        self.calls = 0

    def complete(self, prompts):
        self.calls += 1
        self.prompts += len(prompts)
        return [None if self.calls == 1 else "Score: 0.4" for _ in prompts]


def test_failures_are_retried_replies_are_reused(make_inputs, violin, tmp_path):
    judge = Flaky()
    term = JudgeThinkReward(judge, cache=JudgeCache(str(tmp_path / "c.json")))
    inputs = make_inputs(["<think>Bowed strings.</think><answer>B</answer>"], violin)
    assert term.score(inputs) == [0.5]  # no reply: fallback 0.5, not cached
    assert term.metrics() == {"judge/failures": 1.0, "judge/cache_hits": 0.0}
    assert term.score(inputs) == [0.4]  # asked again
    assert term.score(inputs) == [0.4]  # third time: from the cache
    assert judge.prompts == 2 and term.metrics() == {"judge/failures": 0.0, "judge/cache_hits": 1.0}
    # A new term reading the same file asks nothing.
    again = JudgeThinkReward(judge, cache=JudgeCache(str(tmp_path / "c.json")))
    assert again.score(inputs) == [0.4] and judge.prompts == 2
