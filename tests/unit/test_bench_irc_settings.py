"""bench/irc.py's settings rows say what each contender really ran with.

The "defaults" row must be bridgekit as shipped (its pacing is the settings model's default, not
a copy of it that could drift) and the "capacity" row must have pacing off on every side it
compares: heisenbridge, whose throttle cannot be turned off, has no capacity row.
"""

from __future__ import annotations

from typing import Any

from bench.irc_settings import CAPACITY, DEFAULTS, MANY_USERS, ROWS, bridgekit_section
from bridges.irc.settings import IrcSettings

SHIPPED_RATE = IrcSettings.model_fields["lines_per_second"].default
SHIPPED_BURST = IrcSettings.model_fields["burst"].default


def _as_bridgekit_reads_it(section: dict[str, Any]) -> IrcSettings:
    """The connector section as the IRC connector gets it (the core consumes ``factory``)."""
    settings = {key: value for key, value in section.items() if key != "factory"}
    return IrcSettings.model_validate(settings)


def test_the_defaults_row_runs_bridgekit_with_the_shipped_pacing() -> None:
    ran_with = _as_bridgekit_reads_it(bridgekit_section(DEFAULTS, 6667, "bkbot"))

    assert SHIPPED_RATE > 0  # a "defaults" row with pacing off would flatter bridgekit again
    assert (ran_with.lines_per_second, ran_with.burst) == (SHIPPED_RATE, SHIPPED_BURST)
    # No pacing key at all: a changed default reaches the benchmark without editing it.
    assert not {"lines_per_second", "burst"} & DEFAULTS.bridgekit_keys.keys()


def test_the_capacity_row_has_pacing_off_on_every_side_it_shows() -> None:
    ran_with = _as_bridgekit_reads_it(bridgekit_section(CAPACITY, 6667, "bkbot"))

    assert ran_with.lines_per_second == 0
    assert CAPACITY.heisenbridge is None
    assert CAPACITY.heisenbridge_label() is None


def test_the_settings_column_names_what_ran() -> None:
    assert DEFAULTS.bridgekit_label() == (
        f"defaults: {SHIPPED_RATE:g} lines/s after a burst of {SHIPPED_BURST}")
    assert CAPACITY.bridgekit_label() == "capacity: pacing off (lines_per_second 0)"
    heisenbridge = DEFAULTS.heisenbridge_label()
    assert heisenbridge is not None
    assert heisenbridge.startswith("defaults: ")
    assert "1.5 s per line" in heisenbridge


def test_every_row_is_a_valid_irc_section_apart_from_pacing() -> None:
    sections = [_as_bridgekit_reads_it(bridgekit_section(row, 6697, "bkbot")) for row in ROWS]

    assert {row.name for row in ROWS} == {"defaults", "capacity"}
    # The rows differ in pacing only: whatever else the benchmark sets is the same for both.
    assert len({s.model_dump_json(exclude={"lines_per_second", "burst"}) for s in sections}) == 1


def test_the_many_users_row_paces_neither_lines_nor_connections_and_says_so() -> None:
    ran_with = _as_bridgekit_reads_it(bridgekit_section(MANY_USERS, 6667, "bkbot"))

    assert ran_with.lines_per_second == 0
    assert ran_with.connects_per_second == 0
    assert MANY_USERS.bridgekit_label() == (
        "capacity: pacing off (lines_per_second 0), connections unpaced (connects_per_second 0)")
    # Only the pacing differs from the capacity row.
    capacity = _as_bridgekit_reads_it(bridgekit_section(CAPACITY, 6667, "bkbot"))
    assert ran_with.model_dump_json(exclude={"connects_per_second"}) == capacity.model_dump_json(
        exclude={"connects_per_second"})
