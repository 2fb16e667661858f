"""Which output pacing each bridge runs with in ``bench/irc.py``'s Matrix -> IRC scenarios.

Two settings, each a row of the tables:

- **defaults**: what a deployment meets. bridgekit gets no pacing keys at all, so it runs with the
  shipped defaults of ``bridges.irc.settings.IrcSettings`` (a burst, then ``lines_per_second``);
  heisenbridge runs as it always does.
- **capacity**: pacing off, on every side that allows it. bridgekit gets ``lines_per_second: 0``.
  heisenbridge's throttle is built into its IRC connection (``heisenbridge/irc.py``,
  ``HeisenConnection._run``: after about 5 fast lines, at least 1.5 s per line) with no setting to
  turn it off, so it has no capacity row: comparing pacing off with a throttle would say nothing.

``tests/unit/test_bench_irc_settings.py`` checks that this table and the sections the benchmark
writes agree with the shipped settings model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridges.irc.settings import IrcSettings

# heisenbridge 1.15's HeisenConnection._run: a penalty grows with each line sent within the same
# second; past 5, every line waits max(len / 512 * 6, 1.5) s. Long lines wait longer at once.
HEISENBRIDGE_THROTTLE = "built in: after ~5 fast lines, >= 1.5 s per line (no setting)"
# heisenbridge's event_queue.EventQueue: IRC lines arriving within 0.1 s of each other (up to 1 s
# in all) become one Matrix event, so every IRC -> Matrix line waits at least 0.1 s by design.
HEISENBRIDGE_MERGE_WINDOW_S = 0.1


@dataclass(frozen=True, slots=True)
class Pacing:
    """One settings row: what bridgekit's IRC section sets, and what heisenbridge runs with
    (None: heisenbridge cannot run this way and has no row)."""

    name: str
    bridgekit_keys: dict[str, Any] = field(default_factory=dict)
    heisenbridge: str | None = None

    def bridgekit_settings(self, server: str = "127.0.0.1", port: int = 6667) -> IrcSettings:
        """The settings bridgekit's connector ends up with for this row (validated like the
        bridge validates its config)."""
        return IrcSettings.model_validate({"server": server, "port": port, **self.bridgekit_keys})

    def bridgekit_label(self) -> str:
        settings = self.bridgekit_settings()
        if settings.lines_per_second == 0:
            pacing = "pacing off (lines_per_second 0)"
        else:
            pacing = f"{settings.lines_per_second:g} lines/s after a burst of {settings.burst}"
        if settings.connects_per_second == 0:
            pacing += ", connections unpaced (connects_per_second 0)"
        return f"{self.name}: {pacing}"

    def heisenbridge_label(self) -> str | None:
        return None if self.heisenbridge is None else f"{self.name}: {self.heisenbridge}"


DEFAULTS = Pacing("defaults", {}, HEISENBRIDGE_THROTTLE)
CAPACITY = Pacing("capacity", {"lines_per_second": 0}, None)
ROWS = (DEFAULTS, CAPACITY)
MANY_USERS = Pacing("capacity", {"lines_per_second": 0, "connects_per_second": 0}, None)
"""Scenario 6b (N Matrix users speaking once each, on an ngIRCd with its limits off): what it
measures is the memory of N connections, so they are not paced either. With the shipped
``connects_per_second`` (2 after a burst of 10) 1,000 users' connections take over 8 minutes to
open, one room's events wait for them in order, and the scenario's time ran out with none open."""


def bridgekit_section(pacing: Pacing, server_port: int, bot_nick: str) -> dict[str, Any]:
    """The IRC connector section bridgekit is started with in the benchmark."""
    return {"factory": "irc", "server": "127.0.0.1", "port": server_port, "tls": False,
            "bot_nick": bot_nick, "virtual_users": True, **pacing.bridgekit_keys}
