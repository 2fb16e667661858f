"""Requests refused for a wrong hs_token, told to the admin once rather than as INFO access lines.

A homeserver that still has an old registration (the bridge's tokens were renewed, the file was
not reinstalled, or the homeserver was not restarted) pushes every transaction and ping with the
old hs_token: each is answered 403, and without this nothing but the access log shows it. One
WARNING says what it means and what to do; then at most one every ``interval`` seconds, with the
count of refusals since, so a homeserver retrying all day does not fill the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

WARNING_INTERVAL_SECONDS = 600.0


class TokenRefusals:
    def __init__(
        self, *, interval: float = WARNING_INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval, self._clock = interval, clock
        self._last_warning: float | None = None
        self._unreported = 0
        self.total = 0

    def refused(self, path: str) -> None:
        """A request on ``path`` carried an hs_token that is not this bridge's (answered 403)."""
        self.total += 1
        self._unreported += 1
        now = self._clock()
        if self._last_warning is not None and now - self._last_warning < self._interval:
            return
        self._last_warning = now
        count, self._unreported = self._unreported, 0
        log.warning(
            "the homeserver's requests carry an hs_token that is not this bridge's (%d refused with 403, last %s; "
            "%d in all): it has a stale registration. Install the registration file the bridge reads "
            "(appservice.registration) on the homeserver again and restart the homeserver; if the tokens come "
            "from BRIDGEKIT_HS_TOKEN, it must equal hs_token in that file. `bridgekit doctor` checks it "
            "(the homeserver pings the bridge). Next reminder in %.0f minutes at the earliest.",
            count, path, self.total, self._interval / 60,
        )


__all__ = ["WARNING_INTERVAL_SECONDS", "TokenRefusals"]
