"""vLLM's sleep mode around each generation, so the sidecar's GPU memory is the trainer's between generations.

Each generation: wake the weights → stream the current weights in → wake the KV cache (and reset the caches) →
generate → sleep. Level 2 is used: it drops the weights instead of copying them to host memory, which costs nothing
here because every wake is followed by a full streamed sync anyway (a level-1 backup would cost host RAM and a copy
each way for weights that are about to be overwritten). Sleep needs a GPU: vLLM's CPU worker ignores it, so on a
CPU it is off (`rollout.server.sleep: null`), and its call order is tested against a fake server.
"""

from __future__ import annotations

SLEEP_LEVEL = 2
PARTS = ("weights", "kv_cache")  # vLLM's wake-up tags, woken one at a time so the peak stays low


class ServerSleep:
    """Which parts of the server's GPU state are asleep, and the calls that change it."""

    def __init__(self, client, enabled: bool) -> None:
        self.client, self.enabled = client, enabled
        self.asleep: set[str] = set()

    def wake(self, part: str) -> bool:
        """Wake `part` if it sleeps; whether it did (the caller then refills it)."""
        if part not in self.asleep:
            return False
        self.client.call("POST", f"/wake_up?tags={part}")
        self.asleep.discard(part)
        return True

    def sleep(self) -> None:
        """Free the server's weights and KV cache until the next generation."""
        if self.enabled:
            self.client.call("POST", f"/sleep?level={SLEEP_LEVEL}")
            self.asleep = set(PARTS)
