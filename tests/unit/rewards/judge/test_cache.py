"""The judge reply cache: keys, memory, the SQLite file, what is never cached, and sharing between processes."""

from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys

import pytest

from audio_thinker.rewards.judge.cache import JudgeCache
from audio_thinker.rewards.judge.terms import JudgeThinkReward


def test_key_separates_fields():
    assert JudgeCache.key("ab", "c", "r") != JudgeCache.key("a", "bc", "r")  # no ambiguity from concatenation
    assert JudgeCache.key("q", "c", "r") == JudgeCache.key("q", "c", "r")
    assert JudgeCache.key("q", "c", "r1") != JudgeCache.key("q", "c", "r2")  # another rubric, another entry


def test_memory_only_cache_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = JudgeCache()
    cache.put("k", "7")
    cache.put_many({"a": "Yes", "b": "No"})
    assert cache.get("k") == "7" and cache.get("other") is None and len(cache) == 3
    assert cache.get_many(["a", "b", "zz", "a"]) == {"a": "Yes", "b": "No"}
    assert list(tmp_path.iterdir()) == []


def test_file_round_trip_is_sqlite(tmp_path):
    path = tmp_path / "sub" / "judge.sqlite"
    first = JudgeCache(str(path))
    first.put_many({"k": "yes", "j": "3"})
    rows = dict(sqlite3.connect(path).execute("SELECT key, reply FROM replies"))  # committed, readable by anyone
    assert rows == {"k": "yes", "j": "3"}
    assert JudgeCache(str(path)).get_many(["k", "j"]) == {"k": "yes", "j": "3"}


def test_many_keys_in_one_lookup():
    cache = JudgeCache()
    cache.put_many({f"k{i}": str(i % 11) for i in range(1200)})  # more than one SQLite parameter chunk
    found = cache.get_many(f"k{i}" for i in range(1200))
    assert len(found) == 1200 and found["k1199"] == str(1199 % 11)


def test_two_processes_share_one_file(tmp_path):
    path = tmp_path / "shared.sqlite"
    JudgeCache(str(path)).put("mine", "Yes")
    code = (  # another process (another DDP rank, another run) while this one holds the file open
        f"import sqlite3; db = sqlite3.connect({str(path)!r})\n"
        "assert db.execute(\"SELECT reply FROM replies WHERE key = 'mine'\").fetchone() == ('Yes',)\n"
        "with db: db.execute(\"INSERT INTO replies VALUES ('theirs', '9')\")"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert JudgeCache(str(path)).get("theirs") == "9"


def test_old_json_cache_says_what_to_do(tmp_path):
    path = tmp_path / "judge.json"
    path.write_text('{"k": "yes"}')
    with pytest.raises(ValueError, match="not an SQLite database.*delete it"):
        JudgeCache(str(path))


def test_pickles_for_spawned_workers(tmp_path):
    memory = JudgeCache()
    memory.put("k", "4")
    assert pickle.loads(pickle.dumps(memory)).get("k") == "4"  # a memory cache carries its rows
    on_disk = JudgeCache(str(tmp_path / "c.sqlite"))
    on_disk.put("k", "5")
    assert pickle.loads(pickle.dumps(on_disk)).get("k") == "5"  # a file cache reopens its file


class Flaky:
    """Fails (None) on the first call, answers afterwards; counts prompts."""

    def __init__(self) -> None:
        self.prompts = 0
        self.calls = 0

    def complete(self, prompts, grammar=None):
        self.calls += 1
        self.prompts += len(prompts)
        return [None if self.calls == 1 else "4" for _ in prompts]


def test_failures_are_retried_replies_are_reused(make_inputs, violin, tmp_path):
    judge = Flaky()
    term = JudgeThinkReward(judge, cache=JudgeCache(str(tmp_path / "c.sqlite")))
    inputs = make_inputs(["<think>Bowed strings.</think><answer>B</answer>"], violin)
    assert term.score(inputs) == [None]  # no reply and nothing else judged: not applicable (a mean of nothing)
    assert term.metrics()["judge/transport_failures"] == 1.0
    assert term.score(inputs) == [0.4]  # asked again
    assert term.score(inputs) == [0.4]  # third time: from the cache
    assert judge.prompts == 2 and term.metrics()["judge/cache_hits"] == 1.0 and term.metrics()["judge/requests"] == 0
    # A new term reading the same file asks nothing.
    again = JudgeThinkReward(judge, cache=JudgeCache(str(tmp_path / "c.sqlite")))
    assert again.score(inputs) == [0.4] and judge.prompts == 2
