"""When to connect again, as plain classes that take the clock as a number (no sleeping here):

- :class:`ConnectPacer`: one per network. New connections (the bot's, each Matrix user's) take a
  token from it, so that after an IRC server restart hundreds of users do not all connect in the
  same second: networks throttle or K-line a host that does (matrix.org's bridge took hours to
  bring 500 users back at Libera's rate). Tokens are *reserved*: each caller learns how long to
  wait, and callers that come together are spread out in the order they came.
- :class:`Backoff`: one per connection. 2, 4, 8 ... s between tries, capped, with jitter so that
  connections dropped together do not retry together; longer when the server said it throttles
  us; none at all (stop) when it banned us (K-line, G-line, Z-line: retrying only makes it worse).
- :func:`read_refusal`: what the server's last words (``ERROR :Closing link: ... (Throttled)``,
  465) mean for the above.

A Matrix user is told once per outage, not once per try: the connector reports the state
(``report_session``) and the core tells the owner only when it changes.
"""

from __future__ import annotations

import enum
import random
import re
from collections.abc import Callable

THROTTLE_FLOOR_S = 60.0
"""After a server said it throttles our connections, wait at least this long (InspIRCd's
connect throttle lasts a minute by default; Solanum's reject cache longer)."""

_BANNED = re.compile(r"k-?lined|g-?lined|z-?lined|banned|\b465\b|you are not welcome", re.IGNORECASE)
_THROTTLED = re.compile(
    r"throttl|too many (host |user |global )?connections|too many connections from|connection rate|"
    r"trying to reconnect too fast|reconnecting too fast|excess(ive)? connect|max.*clients",
    re.IGNORECASE,
)


class Refusal(enum.Enum):
    NONE = "none"
    """An ordinary drop (server restart, network trouble, ping timeout)."""
    THROTTLED = "throttled"
    """Too many connections, or too fast: wait longer, then try again."""
    BANNED = "banned"
    """K-line, G-line, Z-line (465): do not try again until someone looks."""


def read_refusal(last_words: str | None) -> Refusal:
    """What the server said as it closed the connection (``ERROR :...``, or the text of 465)."""
    if not last_words:
        return Refusal.NONE
    if _BANNED.search(last_words):
        return Refusal.BANNED
    if _THROTTLED.search(last_words):
        return Refusal.THROTTLED
    return Refusal.NONE


class ConnectPacer:
    """``burst`` connections at once, then ``rate`` a second, for a whole network.

    A ``rate`` of 0 or less does not pace (benchmarks, a test server)."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._refilled = now

    def reserve(self, now: float) -> float:
        """Take the next token, possibly one not there yet; returns how many seconds to wait
        before connecting (0: now). Tokens may go negative: that is the queue of callers."""
        if self.rate <= 0:
            return 0.0
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class Backoff:
    """Waits between one connection's tries: ``base`` * 2^n, at most ``cap``, each drawn between
    half and all of that (jitter), so connections dropped together spread out."""

    def __init__(self, *, base: float = 2.0, cap: float = 300.0, draw: Callable[[], float] = random.random) -> None:
        self.base = base
        self.cap = cap
        self._draw = draw
        self.failures = 0

    def reset(self) -> None:
        """Connected: the next outage starts from ``base`` again."""
        self.failures = 0

    def next_wait(self, refusal: Refusal = Refusal.NONE) -> float | None:
        """Seconds to wait before the next try after a failure; None after a ban (stop)."""
        if refusal is Refusal.BANNED:
            return None
        ceiling: float = min(self.cap, self.base * 2.0 ** self.failures)
        self.failures += 1
        wait = ceiling / 2 + self._draw() * ceiling / 2
        if refusal is Refusal.THROTTLED:
            wait = max(wait, THROTTLE_FLOOR_S + self._draw() * THROTTLE_FLOOR_S / 2)
        return wait


__all__ = ["Backoff", "ConnectPacer", "Refusal", "read_refusal"]
