"""Secrets kept out of what a run prints: credentials written into a URL (`http://user:key@host/v1`).

A judge's `base_url` may carry them (some hosted APIs and proxies take basic auth in the URL). Requests still use the
URL as given; every log line, warning, error message, cache key and logged hyperparameter shows `http://***@host/v1`.
(The config file Hydra writes into the run folder keeps what was typed: `api_key_env` keeps a key out of it.)
"""

from __future__ import annotations

import re
from typing import Any

# scheme://userinfo@ : userinfo is everything up to the last "@" before the host's path, query or end.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#\s@]*(?:@[^/?#\s@]*)*@")


def redact_urls(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by `***`.

    >>> redact_urls("judge http://user:sk-123@host:8000/v1 is down")
    'judge http://***@host:8000/v1 is down'
    """
    return _USERINFO.sub(r"\g<scheme>***@", text)


def redacted(value: Any) -> Any:
    """`value` (nested dicts and lists of plain values) with `redact_urls` applied to every string."""
    if isinstance(value, str):
        return redact_urls(value)
    if isinstance(value, dict):
        return {key: redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redacted(item) for item in value]
    return value
