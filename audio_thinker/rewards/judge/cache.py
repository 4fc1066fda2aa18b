"""A cache of judge replies keyed by (question, completion, rubric), in SQLite: in memory or in a file."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

_SQLITE_MAGIC = b"SQLite format 3\x00"


class JudgeCache:
    """Judge replies by key; with `path`, an SQLite file that reruns (and DDP ranks, concurrently) share.

    Only replies are cached, never failures (None): a timeout is retried the next time the prompt comes up, while
    a reply that does not parse is kept, because a greedy judge would answer the same again. Each `put_many` is one
    committed transaction, so a crash loses at most the batch being written and nothing is rewritten wholesale.
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        if self.path is None:
            target = ":memory:"
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size and _head(self.path) != _SQLITE_MAGIC:
                raise ValueError(
                    f"judge cache {self.path} is not an SQLite database (a JSON cache of an older version?): "
                    "delete it or point the cache's `path` elsewhere, e.g. judge_cache.sqlite"
                )
            target = str(self.path)
        db = sqlite3.connect(target, timeout=60.0, check_same_thread=False)
        if self.path is not None:
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer (other ranks, other runs)
        db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")
        return db

    @staticmethod
    def key(question: str, completion: str, rubric: str) -> str:
        """SHA-256 of the three strings; JSON-encoded first so ("ab", "c") and ("a", "bc") differ."""
        return hashlib.sha256(json.dumps([question, completion, rubric]).encode()).hexdigest()

    def get(self, key: str) -> str | None:
        """The cached reply, or None."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """The cached replies among `keys`."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(keys), 500):  # SQLite bounds the number of query parameters
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(self._db.execute(f"SELECT key, reply FROM replies WHERE key IN ({marks})", chunk))
        return found

    def put(self, key: str, reply: str) -> None:
        """Remember one reply."""
        self.put_many({key: reply})

    def put_many(self, replies: dict[str, str]) -> None:
        """Remember replies, committed as one transaction."""
        if not replies:
            return
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO replies (key, reply) VALUES (?, ?)", replies.items())

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def __getstate__(self) -> dict:
        """Pickle (spawned DDP workers): a file cache reopens its file; a memory cache carries its rows."""
        rows = None if self.path else dict(self._db.execute("SELECT key, reply FROM replies"))
        return {"path": self.path, "rows": rows}

    def __setstate__(self, state: dict) -> None:
        self.path, self._lock = state["path"], threading.Lock()
        self._db = self._connect()
        if state["rows"]:
            self.put_many(state["rows"])


def _head(path: Path) -> bytes:
    """The first 16 bytes of a file (an SQLite database starts with its magic string)."""
    with path.open("rb") as file:
        return file.read(16)
