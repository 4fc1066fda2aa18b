"""A cache of judge replies keyed by (question, completion, rubric), in memory and optionally in a JSON file."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


class JudgeCache:
    """Judge replies by key; with `path`, loaded from and saved to a JSON file so reruns skip answered prompts.

    Only replies are cached, never failures (None): a timeout is retried the next time the prompt comes up, while
    a garbage reply is kept, because a greedy judge would answer the same garbage again. The file is written
    atomically (temp file + rename); with several processes (DDP ranks) give each its own `path`.
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = Path(path) if path else None
        self._replies: dict[str, str] = {}
        if self.path is not None and self.path.exists():
            loaded = json.loads(self.path.read_text())
            if not isinstance(loaded, dict):
                raise ValueError(f"judge cache {self.path} is not a JSON object; delete it or point `path` elsewhere")
            self._replies = {str(k): str(v) for k, v in loaded.items()}

    @staticmethod
    def key(question: str, completion: str, rubric: str) -> str:
        """SHA-256 of the three strings; JSON-encoded first so ("ab", "c") and ("a", "bc") differ."""
        return hashlib.sha256(json.dumps([question, completion, rubric]).encode()).hexdigest()

    def get(self, key: str) -> str | None:
        """The cached reply, or None."""
        return self._replies.get(key)

    def put(self, key: str, reply: str) -> None:
        """Remember a reply (in memory; `save` writes the file)."""
        self._replies[key] = reply

    def save(self) -> None:
        """Write the file if this cache has a path (no-op otherwise)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(prefix=".judge-cache-", dir=self.path.parent)
        with os.fdopen(handle, "w") as file:
            json.dump(self._replies, file)
        os.replace(staging, self.path)

    def __len__(self) -> int:
        return len(self._replies)
