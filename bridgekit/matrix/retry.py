"""When to try a homeserver request again, and how long to wait first: pure decisions.

The client (:mod:`bridgekit.matrix.client`) performs the waits; this module only chooses them, so
the rules can be read and tested without a clock. A 429 waits what the homeserver asked for
(``retry_after_ms`` in the body, or the ``Retry-After`` header that spec v1.10+ may send instead);
5xx answers and network errors back off exponentially with jitter; other 4xx are never retried,
because sending the same wrong request again cannot make it right.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How persistent the client is.

    ``max_retries`` counts retries, so a request is sent at most ``max_retries + 1`` times.
    ``backoff_cap`` bounds one backoff wait; a homeserver's own 429 wait is honoured up to the
    larger ``rate_limit_cap`` (asking for more than that is treated as asking for the cap).
    """

    max_retries: int = 8
    backoff_base: float = 0.5
    backoff_cap: float = 60.0
    rate_limit_cap: float = 300.0


def backoff_delay(policy: RetryPolicy, retry_number: int, jitter: Callable[[], float]) -> float:
    """Seconds to wait before retry number ``retry_number`` (0 for the first retry).

    "Equal jitter": half the exponential step is fixed, half is random (``jitter()`` in [0, 1)),
    so many bridges restarted together do not hammer the homeserver in lock-step, yet no wait
    collapses to nothing.
    """
    step = min(policy.backoff_cap, policy.backoff_base * 2.0**retry_number)
    return step / 2 + step / 2 * jitter()


def rate_limit_delay(
    policy: RetryPolicy, response: httpx.Response, body: Mapping[str, object] | None,
) -> float | None:
    """Seconds a 429 answer asks us to wait, capped; None when it does not say."""
    asked = _retry_after_ms(body)
    seconds = asked / 1000 if asked is not None else _retry_after_header(response)
    if seconds is None:
        return None
    return min(max(seconds, 0.0), policy.rate_limit_cap)


def is_retryable_status(status: int) -> bool:
    """429 and 5xx are worth another try; every other answer is final."""
    return status == 429 or status >= 500


def is_retryable_transport_error(error: httpx.TransportError) -> bool:
    """Network trouble is worth another try; a malformed URL or proxy config is not."""
    return not isinstance(error, httpx.UnsupportedProtocol | httpx.ProxyError)


def _retry_after_ms(body: Mapping[str, object] | None) -> int | None:
    value = body.get("retry_after_ms") if body is not None else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _retry_after_header(response: httpx.Response) -> float | None:
    # Only the delay-seconds form: the Matrix spec says the header carries seconds. An HTTP-date
    # would need a wall clock to compare with, and falls back to backoff instead.
    raw = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None


__all__ = [
    "RetryPolicy",
    "backoff_delay",
    "is_retryable_status",
    "is_retryable_transport_error",
    "rate_limit_delay",
]
